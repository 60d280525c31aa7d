#!/usr/bin/env bash
# Fetches the CDNOW master data set (23,570 customers, 1997-01-01..1998-06-30), which ships
# inside the lifetimes 0.11.3 package on PyPI, into data/cdnow/CDNOW_master.txt.
# Layout: customer id, date (YYYYMMDD), number of CDs, dollar amount, separated by spaces.
set -euo pipefail
cd "$(dirname "$0")/.."
out=data/cdnow/CDNOW_master.txt
if [[ -s $out ]]; then
  echo "$out already present"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check lifetimes==0.11.3 -d "$tmp"
pkg=$(find "$tmp" -maxdepth 1 -type f | head -1)
mkdir -p data/cdnow
python3 - "$pkg" "$out" <<'PY'
import sys, zipfile, tarfile
pkg, out = sys.argv[1], sys.argv[2]
want = "lifetimes/datasets/CDNOW_master.txt"
if pkg.endswith(".whl") or pkg.endswith(".zip"):
    with zipfile.ZipFile(pkg) as z:
        name = next(n for n in z.namelist() if n.endswith(want))
        data = z.read(name)
else:
    with tarfile.open(pkg) as t:
        m = next(m for m in t.getmembers() if m.name.endswith(want))
        data = t.extractfile(m).read()
open(out, "wb").write(data)
PY
echo "wrote $out ($(wc -l < "$out") rows)"

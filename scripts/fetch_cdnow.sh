#!/usr/bin/env bash
# Fetches the CDNOW data sets that ship inside the lifetimes 0.11.3 package on PyPI into
# data/cdnow/: CDNOW_master.txt (23,570 customers, 1997-01-01..1998-06-30; customer id, date
# YYYYMMDD, number of CDs, dollar amount, separated by spaces), CDNOW_sample.txt (the 2,357-customer
# sample of the BTYD papers) and cdnow_customers_summary.csv (that sample's (x, t_x, T) in weeks
# over the 39-week calibration period, as Fader, Hardie & Lee fitted them; with_transactions adds
# zbar, the mean spend of the repeat purchases).
set -euo pipefail
cd "$(dirname "$0")/.."
files=(CDNOW_master.txt CDNOW_sample.txt cdnow_customers_summary.csv cdnow_customers_summary_with_transactions.csv)
missing=0
for f in "${files[@]}"; do [[ -s data/cdnow/$f ]] || missing=1; done
if [[ $missing == 0 ]]; then
  echo "data/cdnow already present"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check lifetimes==0.11.3 -d "$tmp"
pkg=$(find "$tmp" -maxdepth 1 -type f | head -1)
mkdir -p data/cdnow
python3 - "$pkg" data/cdnow "${files[@]}" <<'PY'
import os, sys, zipfile, tarfile
pkg, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in names:
    want = "lifetimes/datasets/" + name
    if pkg.endswith(".whl") or pkg.endswith(".zip"):
        with zipfile.ZipFile(pkg) as z:
            data = z.read(next(n for n in z.namelist() if n.endswith(want)))
    else:
        with tarfile.open(pkg) as t:
            m = next(m for m in t.getmembers() if m.name.endswith(want))
            data = t.extractfile(m).read()
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)
    lines = data.count(b"\n")
    print(f"wrote data/cdnow/{name} ({lines} lines)")
PY

#!/usr/bin/env python3
"""Runs kam's notebooks headless against a fresh work directory, as CI does.

    python3 notebooks/run_all.py --kam target/release/kam --out /tmp/kam-notebooks
    python3 notebooks/run_all.py --clear      # clear the notebooks' outputs before committing

1. makes OUT/work: generated transactions (kam generate), a model trained on them with a
   backtest (kam train --backtest-last 4), its scores (kam score);
2. starts `kam serve` over OUT/work/models on a free loopback port, with a fresh read key and
   admin key (KAM_API_KEYS), so notebook 02 can swap its promoted model in;
3. executes 01, 02 and 03 in that order with nbclient (a timeout per cell), writing the executed
   copies to OUT/executed/;
4. stops the server, whatever happened.

Exits 0 when every cell ran; otherwise 1, naming the notebook and the cell on stderr (2 for a
failure before any notebook ran: no kam, a missing Python package, a server that did not start).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ["01_explore_model.ipynb", "02_retrain_and_promote.ipynb", "03_crm_client.ipynb"]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def log(msg: str):
    print(f"run_all: {msg}", file=sys.stderr, flush=True)


class Server:
    """`kam serve` on a free loopback port with one read key and one admin key."""

    def __init__(self, kam: str, models: Path, logfile: Path):
        self.read_key = "read-" + secrets.token_hex(16)
        self.admin_key = "admin-" + secrets.token_hex(16)
        env = dict(os.environ, KAM_API_KEYS=f"{self.read_key}:read,{self.admin_key}:admin")
        self.log = open(logfile, "w")
        self.proc = subprocess.Popen(
            [kam, "serve", "--models", str(models), "--addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
        )
        line = self.proc.stdout.readline()  # "kam serve: listening on http://127.0.0.1:PORT"
        found = re.search(r"(http://\S+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"kam serve did not start (see {logfile}): {line!r}")
        self.base = found.group(1)
        self._wait_ready()

    def _wait_ready(self):
        import requests

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/readyz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"kam serve at {self.base} not ready after 20 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def first_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[0][:80] if lines else ""


def run_notebook(path: Path, out: Path, cell_timeout: int, ipc_dir: Path) -> str | None:
    """Executes one notebook cell by cell; writes the executed copy; returns None, or what failed."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from jupyter_client.manager import AsyncKernelManager

    nb = nbformat.read(path, as_version=4)
    # The kernel talks to nbclient over Unix sockets (not loopback TCP), in a private directory.
    km = AsyncKernelManager(kernel_name="python3", transport="ipc")
    km.connection_file = str(ipc_dir / f"kernel-{path.stem}.json")
    km.ip = str(ipc_dir / f"kernel-{path.stem}")
    client = NotebookClient(
        nb, km=km, timeout=cell_timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    failure = None
    index = -1
    try:
        with client.setup_kernel(cleanup_kc=True):  # we made km, so nbclient would not stop its kernel
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
    except CellExecutionError as e:
        failure = f"{e.ename}: {e.evalue}\n{ANSI.sub('', str(e))}"
    except CellTimeoutError:
        failure = f"timed out after {cell_timeout} s"
    except DeadKernelError as e:
        failure = f"the kernel died: {e}"
    finally:
        nbformat.write(nb, out)
    if failure is None:
        return None
    cell = nb.cells[index] if index >= 0 else None
    where = f"cell {index}" + (f" ({cell.cell_type}, starting {first_line(cell.source)!r})" if cell else "")
    return f"{path.name}: {where} failed: {failure}"


def clear(paths: list[Path]) -> int:
    """Removes outputs and execution counts, so the committed notebooks diff as code."""
    import nbformat

    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
            cell.metadata.pop("execution", None)
        nbformat.write(nb, path)
        log(f"cleared {path.name}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kam", help="the kam executable (default: KAM_BIN, kam on PATH, or target/release/kam)")
    ap.add_argument("--out", type=Path, help="output directory (work directory, executed notebooks)")
    ap.add_argument("--clear", action="store_true", help="clear the outputs of the notebooks in place (before committing) and exit")
    ap.add_argument("--customers", type=int, default=20_000, help="generated customers (default 20,000)")
    ap.add_argument("--seed", type=int, default=11, help="generator seed (default 11)")
    ap.add_argument("--cell-timeout", type=int, default=300, help="seconds a cell may take (default 300)")
    ap.add_argument("notebooks", nargs="*", default=NOTEBOOKS, help="notebooks to run (default: all three, in order)")
    args = ap.parse_args()
    if args.clear:
        return clear([HERE / n for n in args.notebooks])
    if args.out is None:
        ap.error("--out is required")

    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
        import requests  # noqa: F401
    except ImportError as e:
        log(f"{e}: run `python3 -m pip install -r notebooks/requirements.txt`")
        return 2

    # SIGTERM (CI cancelling, a test harness) unwinds like Ctrl-C, so the server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    out = args.out.resolve()
    executed = out / "executed"
    executed.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    if args.kam:
        os.environ["KAM_BIN"] = str(Path(args.kam).resolve())
    os.environ["KAM_WORKDIR"] = str(work)
    for name in ("KAM_MODEL", "KAM_API", "KAM_API_KEY", "KAM_ADMIN_KEY", "KAM_NEW_DATA"):
        os.environ.pop(name, None)
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # No __pycache__ left in the source tree by this runner or the kernels it starts.
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True

    sys.path.insert(0, str(HERE))
    import kamnb

    started = time.monotonic()
    try:
        kam = kamnb.kam_bin()
        model = kamnb.Work(work).prepare(customers=args.customers, seed=args.seed)
    except Exception as e:  # noqa: BLE001 - reported, then exit 2
        log(f"preparing {work} failed: {e}")
        return 2
    log(f"work directory {work}: model {model} ({time.monotonic() - started:.1f} s)")

    try:
        server = Server(kam, work / "models", out / "serve.log")
    except Exception as e:  # noqa: BLE001
        log(f"{e}")
        return 2
    ipc_dir = Path(tempfile.mkdtemp(prefix="kam-nb-"))  # short: Unix socket paths are limited to ~100 bytes
    failures = []
    try:
        os.environ.update(KAM_API=server.base, KAM_API_KEY=server.read_key, KAM_ADMIN_KEY=server.admin_key)
        log(f"kam serve at {server.base}")
        for name in args.notebooks:
            path = (HERE / name) if not Path(name).is_absolute() else Path(name)
            t0 = time.monotonic()
            failure = run_notebook(path, executed / path.name, args.cell_timeout, ipc_dir)
            status = "ok" if failure is None else "FAILED"
            log(f"{path.name}: {status} in {time.monotonic() - t0:.1f} s -> {executed / path.name}")
            if failure:
                failures.append(failure)
    finally:
        server.stop()
        shutil.rmtree(ipc_dir, ignore_errors=True)
    if failures:
        for f in failures:
            print(f"notebook failure: {f}", file=sys.stderr)
        return 1
    log(f"all {len(args.notebooks)} notebooks ran in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What kam's notebooks share: where the kam binary, its data, its models and its API are; running
kam; a work directory made from generated data; a temporary `kam serve`.

Nothing here models anything: every number the notebooks show comes from kam itself (the model
artifact, `kam score` output, or the HTTP API).

Environment variables (all optional):

    KAM_BIN      the kam executable (default: `kam` on PATH, else target/release/kam)
    KAM_WORKDIR  a directory with data/, models/ and scores/ (default: notebooks/work); made from
                 generated data on first use when it holds no model
    KAM_MODEL    the model id to explore (default: the active one, models/CURRENT)
    KAM_API      base URL of a running `kam serve` (default: a temporary server over
                 KAM_WORKDIR/models, started by the notebook and stopped at its end)
    KAM_API_KEY  a read key for that server, if it has keys
    KAM_ADMIN_KEY an admin key for that server (02 uses it to swap the promoted model in)
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

# The generated data set a fresh work directory is made from.
DEFAULT_CUSTOMERS = 20_000
DEFAULT_SEED = 11
DATA_STEM = "g"


def kam_bin() -> str:
    """The kam executable: KAM_BIN, else `kam` on PATH, else target/release/kam of this repo."""
    given = os.environ.get("KAM_BIN")
    if given:
        if not Path(given).exists() and shutil.which(given) is None:
            raise FileNotFoundError(f"KAM_BIN={given!r} does not exist")
        return given
    on_path = shutil.which("kam")
    if on_path:
        return on_path
    local = REPO / "target" / "release" / "kam"
    if local.exists():
        return str(local)
    raise FileNotFoundError(
        "no kam executable: set KAM_BIN, put kam on PATH, or run `cargo build --release` in the repository"
    )


def workdir() -> Path:
    """KAM_WORKDIR (default notebooks/work)."""
    return Path(os.environ.get("KAM_WORKDIR") or HERE / "work").resolve()


def kam(*args, check: bool = True, quiet: bool = False) -> str:
    """Runs kam with the arguments and returns its standard output; raises with kam's own error
    message (its standard error) when it fails."""
    cmd = [kam_bin(), *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr.strip()}")
    if not quiet and done.stderr.strip():
        print(done.stderr.strip())
    return done.stdout


def kam_json(*args):
    """Runs kam with `--json` appended and parses its output."""
    return json.loads(kam(*args, "--json", quiet=True))


class Work:
    """A work directory: data/ (transactions), models/ (kam's store), scores/ (kam score output)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else workdir()
        self.data = self.root / "data"
        self.models = self.root / "models"
        self.scores = self.root / "scores"

    def active_id(self) -> str | None:
        current = self.models / "CURRENT"
        return current.read_text().strip() if current.exists() else None

    def model_id(self) -> str:
        """KAM_MODEL, else the active model."""
        mid = os.environ.get("KAM_MODEL") or self.active_id()
        if not mid:
            raise FileNotFoundError(f"no model in {self.models}: run prepare() or notebooks/run_all.py first")
        return mid

    def artifact(self, model_id: str | None = None) -> dict:
        """A stored model artifact, as written by `kam train` (models/<id>.json)."""
        return json.loads((self.models / f"{model_id or self.model_id()}.json").read_text())

    def trained_on(self, model_id: str, path: Path) -> None:
        """Records the transactions file a model was trained on (sources.json in the work
        directory): an artifact fingerprints its data, not the file's name or place."""
        registry = self.root / "sources.json"
        known = json.loads(registry.read_text()) if registry.exists() else {}
        known[model_id] = str(Path(path).resolve())
        registry.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")

    def source_data(self, artifact: dict) -> Path:
        """The transactions file a model was trained on, as `trained_on` recorded it."""
        registry = self.root / "sources.json"
        known = json.loads(registry.read_text()) if registry.exists() else {}
        if artifact["id"] not in known or not Path(known[artifact["id"]]).exists():
            raise FileNotFoundError(f"the data model {artifact['id']} was trained on is not recorded in {registry}")
        return Path(known[artifact["id"]])

    def scores_file(self, model_id: str | None = None) -> Path:
        """`kam score` output for a model on its own training data: scores/<id>.csv, written by
        kam on first use."""
        mid = model_id or self.model_id()
        path = self.scores / f"{mid}.csv"
        if not path.exists():
            self.scores.mkdir(parents=True, exist_ok=True)
            data = self.source_data(self.artifact(mid))
            tmp = path.with_name(f"{mid}.partial.csv")
            kam("score", data, "--models", self.models, "--model", mid, "--out", tmp, quiet=True)
            tmp.replace(path)
        return path

    def prepare(self, customers: int = DEFAULT_CUSTOMERS, seed: int = DEFAULT_SEED, backtest_last: int = 4) -> str:
        """Makes the work directory if it holds no model: generated transactions (kam generate),
        a model trained on them with the generator's planted scheme and a backtest of the last
        periods (kam train), and that model's scores (kam score). Returns the active model id."""
        if self.active_id():
            return self.active_id()
        self.data.mkdir(parents=True, exist_ok=True)
        csv = self.data / f"{DATA_STEM}.csv"
        if not csv.exists():
            kam("generate", "--customers", customers, "--seed", seed, "--out", csv, quiet=True)
        kam(
            "train", csv, "--config", self.data / f"{DATA_STEM}.kam.toml",
            "--backtest-last", backtest_last, "--models", self.models, quiet=True,
        )
        self.trained_on(self.active_id(), csv)
        self.scores_file()
        return self.active_id()


class Api:
    """A client of `kam serve`: KAM_API (and KAM_API_KEY), or a temporary server over the work
    directory's models, started here and stopped when the notebook's kernel ends (or by stop()).
    The temporary server serves `model_id` (default: the active model): a model other than the
    active one is served from a scratch copy of the store, so models/CURRENT is left alone."""

    def __init__(self, work: Work, base: str | None = None, key: str | None = None, model_id: str | None = None):
        self.base = (base or os.environ.get("KAM_API") or "").rstrip("/")
        self.key = key or os.environ.get("KAM_API_KEY")
        self._proc = None
        self._scratch = None
        if not self.base:
            models = work.models
            if model_id and model_id != work.active_id():
                self._scratch = Path(tempfile.mkdtemp(prefix="kam-models-"))
                for name in (f"{model_id}.json", f"{model_id}.customers.jsonl"):
                    if (work.models / name).exists():
                        shutil.copy(work.models / name, self._scratch / name)
                (self._scratch / "CURRENT").write_text(model_id + "\n")
                models = self._scratch
            self.base = self._start(models)
        self.session = requests.Session()
        if self.key:
            self.session.headers["Authorization"] = f"Bearer {self.key}"

    def _start(self, models: Path) -> str:
        env = {k: v for k, v in os.environ.items() if k != "KAM_API_KEYS"}
        self._proc = subprocess.Popen(
            [kam_bin(), "serve", "--models", str(models), "--addr", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        atexit.register(self.stop)
        line = self._proc.stdout.readline()  # "kam serve: listening on http://127.0.0.1:PORT"
        found = re.search(r"(http://\S+)", line)
        if not found:
            self.stop()
            raise RuntimeError(f"kam serve did not start: {line!r}")
        base = found.group(1)
        for _ in range(100):
            try:
                if requests.get(f"{base}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        print(f"started a temporary kam serve at {base} (stopped at the end of the notebook)")
        return base

    def stop(self):
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _check(self, r: requests.Response):
        if not r.ok:
            raise RuntimeError(f"{r.request.method} {r.url}: {r.status_code} {r.text[:500]}")
        return r.json()

    def get(self, path: str, **params):
        return self._check(self.session.get(self.base + path, params=params, timeout=60))

    def post(self, path: str, body: dict | None = None, headers: dict | None = None):
        return self._check(self.session.post(self.base + path, json=body or {}, headers=headers, timeout=120))


def state_groups(artifact: dict) -> dict[str, str]:
    """Each state of a model's scheme by its family, for charts of models with many states:
    `new`, each tier, and every dormant_* and lapsed_* state under `dormant` and `lapsed`."""
    scheme = artifact["segments"]["scheme"]
    out = {}
    for s in artifact["segments"]["states"]:
        if s.startswith(scheme["lapsed"]):
            out[s] = scheme["lapsed"]
        elif s.startswith(scheme["dormant"]):
            out[s] = scheme["dormant"]
        else:
            out[s] = s
    return out


def family_order(artifact: dict) -> list[str]:
    scheme = artifact["segments"]["scheme"]
    return [scheme["new"], *scheme["tiers"], scheme["dormant"], scheme["lapsed"]]

"""The reference server of the inference bench: MLServer with its scikit-learn runtime, from a
venv of its own (.data/bench/mlserver-venv, made on first use from bench/mlserver-requirements.txt,
whose scikit-learn, numpy and pandas are the project's), on free 127.0.0.1 ports, each model
served twice: adaptive batching off, and on (MLSERVER_BATCH)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import joblib

from scripts.proc import DATA, ROOT, free_port, wait_until

REQUIREMENTS = ROOT / "bench" / "mlserver-requirements.txt"
VENV = DATA / "bench" / "mlserver-venv"
MLSERVER_BATCH = {"max_batch_size": 32, "max_batch_time": 0.002}


def mlserver_venv() -> Path:
    """MLServer's own venv, made (or remade, when the requirements changed) from the pinned file."""
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return VENV
    t0 = time.monotonic()
    print(f"mlserver: making its venv {VENV.relative_to(ROOT)} from {REQUIREMENTS.relative_to(ROOT)}", flush=True)
    # The project's interpreter (Python 3.11): the pickle is loaded by the same Python.
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest)
    print(f"mlserver: venv ready in {time.monotonic() - t0:.0f} s", flush=True)
    return VENV


def mlserver_version() -> str:
    for line in REQUIREMENTS.read_text().splitlines():
        if line.startswith("mlserver=="):
            return line.split("==")[1]
    return "?"


class MLServer:
    """`mlserver start` on a model folder, in its own process group; stopped with the group.
    `models` maps a name (served as `<name>` and `<name>-batched`) to its fitted pipeline and
    version."""

    def __init__(self, venv: Path, folder: Path, models: dict[str, tuple[Any, int]]):
        self.venv, self.folder = venv, folder
        self.port, grpc, metrics = free_port(), free_port(), free_port()
        folder.mkdir(parents=True)
        settings = {"host": "127.0.0.1", "http_port": self.port, "grpc_port": grpc, "metrics_port": metrics}
        (folder / "settings.json").write_text(json.dumps(settings))
        for kind, (pipeline, version) in models.items():
            for name, extra in ((kind, {}), (f"{kind}-batched", MLSERVER_BATCH)):
                (folder / name).mkdir()
                joblib.dump(pipeline, folder / name / "model.joblib")
                model_settings = {
                    "name": name,
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": str(version)},
                    **extra,
                }
                (folder / name / "model-settings.json").write_text(json.dumps(model_settings))
        self.names = [p.name for p in folder.iterdir() if p.is_dir()]
        self.log = folder.parent / "mlserver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 90) -> None:
        t0 = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "mlserver"), "start", str(self.folder)],
                cwd=self.folder.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                return True
            try:
                return all(
                    httpx.get(f"{self.url}/v2/models/{n}/ready", timeout=2).status_code == 200 for n in self.names
                )
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout_s, interval_s=0.3)
        if self.proc.poll() is not None or not ready():
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"MLServer did not become ready (log {self.log}):\n{tail}")
        print(f"mlserver: {len(self.names)} models ready in {time.monotonic() - t0:.1f} s on {self.url}", flush=True)

    def troubles(self) -> list[str]:
        """The lines of its log that say something went wrong (errors, tracebacks, workers lost)."""
        if not self.log.exists():
            return []
        words = ("ERROR", "Traceback", "died", "killed", "restart")
        return [line for line in self.log.read_text(errors="replace").splitlines() if any(w in line for w in words)]

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass
        print("mlserver: stopped")

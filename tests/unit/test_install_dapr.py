"""scripts/install-dapr's failures: one clear line and a non-zero exit, never a half-built binary."""

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-dapr"


def run_script(tmp_path: Path, path: str, **env: str) -> subprocess.CompletedProcess:
    # An empty HOME and runtime folder: nothing found, so the script has to build.
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={"PATH": path, "HOME": str(home), "DAPRML_RUNTIME_DIR": str(tmp_path / "rt"), **env})


def test_missing_go_toolchain_is_one_clear_line(tmp_path):
    done = run_script(tmp_path, "/usr/bin:/bin")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "install-dapr: error: Go toolchain not found on PATH; install Go >= 1.26.5 to build daprd 1.18.2 "
        "(or run 'dapr init' so ~/.dapr/bin/daprd exists)"]


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to reach the module step")
def test_unreachable_module_proxy_is_one_clear_line_and_leaves_no_binary(tmp_path):
    go_dir = str(Path(shutil.which("go")).parent)
    done = run_script(tmp_path, f"{go_dir}:/usr/bin:/bin", GOPROXY="off", GOFLAGS="-mod=mod",
                      GOMODCACHE=str(tmp_path / "modcache"), GOCACHE=str(tmp_path / "gocache"))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("install-dapr: error: building daprd failed:")
    assert "full log:" in errors[0]
    assert not list((tmp_path / "rt").rglob("daprd*"))

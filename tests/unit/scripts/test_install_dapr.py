"""scripts/install-dapr's failures: one clear line and a non-zero exit, never a half-built binary."""

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "install-dapr"
GO = shutil.which("go")
needs_go = pytest.mark.skipif(GO is None, reason="needs the Go toolchain to reach the module step")


def run_script(tmp_path: Path, path: str, script: Path = SCRIPT, **env: str) -> subprocess.CompletedProcess:
    # An empty HOME and runtime folder: nothing found, so the script has to build.
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": path, "HOME": str(home), "DAPRML_RUNTIME_DIR": str(tmp_path / "rt"), **env},
    )


def go_path() -> str:
    return f"{Path(GO).parent}:/usr/bin:/bin"


def installed_go() -> str:
    """The version of the go on PATH itself, not one it would switch to."""
    return subprocess.run(
        [GO, "env", "GOVERSION"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        env={"PATH": go_path(), "HOME": "/nonexistent", "GOTOOLCHAIN": "local"},
    ).stdout.strip()


def with_go_line(tmp_path: Path, version: str) -> Path:
    """A copy of the script in a tree whose modules ask for the given Go."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "install-dapr")
    for module in ("runtime", "cli"):
        (root / "dapr" / module).mkdir(parents=True)
        (root / "dapr" / module / "go.mod").write_text(f"module daprml.local/{module}\n\ngo {version}\n")
    return root / "scripts" / "install-dapr"


def test_missing_go_toolchain_is_one_clear_line(tmp_path):
    done = run_script(tmp_path, "/usr/bin:/bin")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "install-dapr: error: Go toolchain not found on PATH; install Go >= 1.26.5 to build daprd 1.18.2 "
        "(or run 'dapr init' so ~/.dapr/bin/daprd exists)"
    ]


@needs_go
def test_a_go_older_than_the_modules_need_is_named_with_the_version_needed_before_any_build(tmp_path):
    script = with_go_line(tmp_path, "1.99.0")
    done = run_script(tmp_path, go_path(), script, GOTOOLCHAIN="local")
    assert done.returncode == 1
    found = installed_go().removeprefix("go")
    assert done.stderr.strip().splitlines() == [
        f"install-dapr: error: found Go {found} ({GO}); daprd 1.18.2 needs Go >= 1.99.0 (the go line of "
        f"dapr/runtime/go.mod): go: go.mod requires go >= 1.99.0 (running go {found}; GOTOOLCHAIN=local); "
        "install Go >= 1.99.0, or set GOTOOLCHAIN=auto to let go download it from the module proxy"
    ]
    assert "building" not in done.stdout
    assert not list((tmp_path / "rt").rglob("daprd*"))


@needs_go
def test_a_go_that_cannot_switch_to_the_version_needed_says_why(tmp_path):
    # GOTOOLCHAIN=auto downloads the Go a module asks for from the module proxy; here it cannot.
    script = with_go_line(tmp_path, "1.99.0")
    done = run_script(tmp_path, go_path(), script, GOTOOLCHAIN="auto", GOPROXY="off")
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(
        f"install-dapr: error: found Go {installed_go().removeprefix('go')} ({GO}); daprd 1.18.2 "
        "needs Go >= 1.99.0 (the go line of dapr/runtime/go.mod): go: download go1.99.0 "
    )
    assert line.endswith(": toolchain not available; install Go >= 1.99.0")


@needs_go
def test_unreachable_module_proxy_is_one_clear_line_and_leaves_no_binary(tmp_path):
    done = run_script(
        tmp_path,
        go_path(),
        GOTOOLCHAIN="local",
        GOPROXY="off",
        GOFLAGS="-mod=mod",
        GOMODCACHE=str(tmp_path / "modcache"),
        GOCACHE=str(tmp_path / "gocache"),
    )
    assert done.returncode == 1
    # Before building, it says which Go it found and which the runtime needs (dapr 1.18.2's go.mod).
    assert f"Go {installed_go().removeprefix('go')} ({GO}) builds daprd 1.18.2, which needs Go >= 1.26.5" in done.stdout
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("install-dapr: error: building daprd failed:")
    assert "full log:" in errors[0]
    assert not list((tmp_path / "rt").rglob("daprd*"))


def fake_program(path: Path, output: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


def test_without_go_jaeger_is_named_in_one_line_and_the_rest_is_installed(tmp_path):
    # A runtime from `dapr init` and a dapr CLI on PATH: nothing to build but Jaeger, and no Go.
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "install-dapr")
    (root / "dapr" / "jaeger").mkdir(parents=True)
    shutil.copy(SCRIPT.parents[1] / "dapr" / "jaeger" / "go.mod", root / "dapr" / "jaeger" / "go.mod")
    home = tmp_path / "home"
    for name in ("daprd", "placement", "scheduler", "sentry"):
        fake_program(home / ".dapr" / "bin" / name, "1.18.2")
    fake_program(tmp_path / "bin" / "dapr", "CLI version: 1.16.5")
    done = run_script(tmp_path, f"{tmp_path / 'bin'}:/usr/bin:/bin", root / "scripts" / "install-dapr")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    jaeger = [line for line in done.stdout.splitlines() if line.startswith("install-dapr: jaeger")]
    assert jaeger == ["install-dapr: jaeger (traces) not built: no Go toolchain on PATH; the stack runs without traces"]
    env = (root / ".data" / "dapr.env").read_text()
    assert "DAPRML_DAPRD=" in env and "DAPRML_JAEGER" not in env


def test_a_jaeger_built_before_is_named_in_the_env_file_and_not_built_again(tmp_path):
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, root / "scripts" / "install-dapr")
    (root / "dapr" / "jaeger").mkdir(parents=True)
    home = tmp_path / "home"
    for name in ("daprd", "placement", "scheduler", "sentry"):
        fake_program(home / ".dapr" / "bin" / name, "1.18.2")
    fake_program(tmp_path / "bin" / "dapr", "CLI version: 1.16.5")
    jaeger = tmp_path / "cache" / "jaeger"
    fake_program(jaeger, '{"gitVersion":"v1.75.0"}')
    done = run_script(
        tmp_path,
        f"{tmp_path / 'bin'}:/usr/bin:/bin",
        root / "scripts" / "install-dapr",
        DAPRML_JAEGER_DIR=str(jaeger.parent),
    )
    assert done.returncode == 0, done.stderr
    assert "building jaeger" not in done.stdout
    assert f"DAPRML_JAEGER={jaeger}\n" in (root / ".data" / "dapr.env").read_text()

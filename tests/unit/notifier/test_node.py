"""The notifier's own tests (services/notifier/test, node --test): its JSON Schema subset against
every schema in events.schema.json, the CloudEvent checks, the champion table and its HTTP routes
with a fake sidecar. The notifier has no npm dependencies, so nothing is installed first."""

import shutil
import subprocess
from pathlib import Path

import pytest

NOTIFIER = Path(__file__).resolve().parents[3] / "services" / "notifier"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_notifiers_node_tests_pass():
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--test", "test/"], cwd=NOTIFIER, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_is_20_or_later():
    assert NODE is not None
    version = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, version

"""`python -m scripts.stack` as make runs it: the module must work as a program, not only when
imported (the tests import Stack; make run and make up run the module, and a helper defined
below its `if __name__ == "__main__"` once broke both while every test passed)."""

import subprocess
import sys

from scripts.proc import ROOT


def test_the_stack_command_reads_the_run_file_and_prints_its_usage():
    done = subprocess.run([sys.executable, "-m", "scripts.stack"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr  # no command: the usage, after Stack.repo() read dapr.yaml
    assert "python -m scripts.stack run" in done.stdout and "Traceback" not in done.stderr

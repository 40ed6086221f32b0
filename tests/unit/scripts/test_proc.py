"""Pidfiles: trusted only for the process we started, so a stale one never makes `make down`
signal a stranger. And without /proc the scripts say they need Linux instead of finding nothing."""

import contextlib
import os
import signal
import subprocess

import pytest

from scripts import infra, proc, stack


@pytest.fixture
def sleeper(tmp_path):
    """A real `sleep` started the way the scripts start servers; stopped at the end whatever happened."""
    pidfile = tmp_path / "sleep.pid"
    pid = proc.start(["sleep", "60"], tmp_path / "sleep.log", pidfile, cwd=tmp_path)
    yield pid, pidfile
    if proc.alive(pid):
        os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):  # subprocess may have reaped it
            os.waitpid(pid, 0)


@pytest.fixture
def stranger():
    """A live process the scripts did not start."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield other.pid
    other.kill()
    other.wait()


def test_the_pidfile_of_a_process_we_started_finds_it_and_stop_ends_it(sleeper):
    pid, pidfile = sleeper
    assert proc.read_pid(pidfile) == pid
    assert proc.stop(pidfile)
    assert not proc.alive(pid)
    assert not pidfile.exists()


@pytest.mark.parametrize("record", ["{pid} 1", "{pid}", "{pid} {start} extra", "not a pid"])
def test_a_pidfile_that_does_not_match_its_process_is_stale_removed_and_nothing_is_signalled(sleeper, record, capsys):
    pid, pidfile = sleeper
    start_time = pidfile.read_text().split()[1]
    pidfile.write_text(record.format(pid=pid, start=start_time))
    assert proc.read_pid(pidfile) is None
    assert not pidfile.exists()
    assert f"removed stale pidfile {pidfile}" in capsys.readouterr().err
    pidfile.write_text(record.format(pid=pid, start=start_time))
    assert proc.stop(pidfile) is False
    assert proc.alive(pid)


@pytest.fixture
def sigterm_received():
    """Signalled by mistake, this test process would end; it records the signal instead."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _: received.append(signum))
    yield received
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("holder", ["stranger", "this test"])
def test_a_pid_now_held_by_an_unrelated_process_is_never_signalled(tmp_path, stranger, sigterm_received, holder):
    pid = stranger if holder == "stranger" else os.getpid()
    pidfile = tmp_path / "old.pid"
    pidfile.write_text(f"{pid} 1\n")
    assert proc.read_pid(pidfile) is None
    pidfile.write_text(f"{pid} 1\n")
    assert proc.stop(pidfile) is False
    assert sigterm_received == [] and proc.alive(pid)
    assert not pidfile.exists()


def test_a_pidfile_of_a_process_that_exited_is_stale(tmp_path):
    pidfile = tmp_path / "gone.pid"
    pid = proc.start(["true"], tmp_path / "true.log", pidfile, cwd=tmp_path)
    with contextlib.suppress(ChildProcessError):  # subprocess reaps the children of Popen objects it dropped
        os.waitpid(pid, 0)
    assert proc.read_pid(pidfile) is None
    assert not pidfile.exists()


def test_without_proc_the_scripts_say_they_need_linux_and_start_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(proc, "PROC", tmp_path / "no-proc")
    for main in (stack.main, infra.main):
        assert main(["status"]) == 1
        assert "need Linux (/proc)" in capsys.readouterr().err
    with pytest.raises(proc.SetupError, match=r"need Linux \(/proc\); on macOS/Windows use"):
        proc.start(["sleep", "60"], tmp_path / "sleep.log", tmp_path / "sleep.pid")
    assert not (tmp_path / "sleep.pid").exists()
    for looks_at_proc in (lambda: proc.alive(os.getpid()), lambda: proc.who_listens(1), lambda: proc.group_members(1)):
        with pytest.raises(proc.SetupError, match="need Linux"):
            looks_at_proc()

"""Tasks for the pool's tests, run in its worker processes: top-level, so a worker finds them
by name (it runs in the project's root, where `tests` is a package)."""

import os
import signal
import time


def pid() -> int:
    return os.getpid()


def fail(message: str) -> None:
    raise ValueError(message)


def sleep_forever() -> None:
    while True:
        time.sleep(60)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))


class Unreadable(Exception):
    """An exception the parent cannot rebuild: its constructor needs two arguments."""

    def __init__(self, a: str, b: str):
        super().__init__(f"{a} {b}")


def raise_unreadable() -> None:
    raise Unreadable("a", "b")

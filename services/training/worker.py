"""A fit worker: a process of its own that runs the CPU-bound steps of training jobs, one at a
time. services/training/pool.py starts, feeds and stops it:

    python -m services.training.worker PARENT_PID MEMORY_BYTES [MODULE ...]

- It dies with the service: the kernel kills it when its parent dies (PR_SET_PDEATHSIG), so a
  training app killed with -9 leaves no worker fitting for nobody.
- It may hold at most MEMORY_BYTES of address space (RLIMIT_AS; 0: no limit): a fit that would
  take the machine's memory gets a MemoryError instead, and says so.
- It imports the MODULEs before it says it is ready, so that a task does not wait for them.
- Then it reads tasks from stdin, each a frame holding a top-level function and its arguments,
  and answers each with a frame on stdout: ("ok", value), ("raised", exception) or ("memory",
  message). End of input ends it.

Frames are pickles, which is safe here: both ends are the service's own processes, over pipes
no one else holds.
"""

import ctypes
import importlib
import os
import pickle
import resource
import signal
import struct
import sys
from typing import IO, Any

HEADER = struct.Struct(">Q")  # the length of the pickle that follows
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>


def die_with(parent: int) -> None:
    prctl = getattr(ctypes.CDLL(None), "prctl", None)
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, None at the end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    return stream.read(HEADER.unpack(header)[0])


def frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def answer(task: bytes) -> bytes:
    """The framed answer to one task, whatever happens: a value, an exception, or the memory
    limit reached (while reading the task, running it or pickling what it returned)."""
    try:
        try:
            function, args = pickle.loads(task)
        except MemoryError:
            raise
        except Exception as exc:  # a function this process cannot import, say
            return frame(("raised", RuntimeError(f"the worker could not read the task: {exc!r}")))
        try:
            return frame(("ok", function(*args)))
        except MemoryError:
            raise
        except Exception as exc:
            try:
                return frame(("raised", exc))
            except Exception:  # an exception that does not pickle still tells what happened
                return frame(("raised", RuntimeError(f"{type(exc).__name__}: {exc}")))
    except MemoryError as exc:
        return frame(("memory", str(exc) or "MemoryError"))


def main(argv: list[str]) -> None:
    parent, memory = int(argv[0]), int(argv[1])
    die_with(parent)
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Ctrl-C in a terminal reaches the whole process group; the service stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # something printing to stdout would corrupt the answers: it goes to the log
    tasks = sys.stdin.buffer
    for module in argv[2:]:
        importlib.import_module(module)
    answers.write(frame(("ready", os.getpid())))
    answers.flush()
    while True:
        try:
            task = read_frame(tasks)
        except MemoryError as exc:  # the task's own arguments did not fit
            reply = frame(("memory", str(exc) or "MemoryError"))
        else:
            if task is None:
                return
            reply = answer(task)
            del task  # the rows: not kept while the next task is awaited
        answers.write(reply)
        answers.flush()


if __name__ == "__main__":
    main(sys.argv[1:])

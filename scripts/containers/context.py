"""Build contexts as tar streams: the engine gets only the files an image copies.

The engine here (Debian's dockerd 20.10, without buildx) builds with the legacy builder, which
reads only a `.dockerignore` at the root of the context, never `deploy/<name>.dockerignore`
(BuildKit's per-Dockerfile file). Sending the repository as the context would send .data/
(secrets, tokens) and .venv/ to the engine. So each build's context is made here from its
Dockerfile's ignore file, which keeps the one shape these files have: `*` first, then `!path`
lines naming what is kept, then patterns taken out of those again; and BuildKit (Docker Desktop)
reads the same files when it builds from docker-compose.yml.
"""

import io
import re
import subprocess
import tarfile
import time
from pathlib import Path

from scripts.containers import engine
from scripts.proc import SetupError

Source = Path | bytes  # a file on disk, or a file's content


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regular expression over a path relative to the context
    (`**` any number of folders, `*` and `?` within one name)."""
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


def rules(ignore_file: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(keep, pattern) per line, in order: the last rule that matches a path (or one of its
    folders) decides."""
    found = []
    for raw in ignore_file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        found.append((keep, _pattern(line.removeprefix("!").strip("/"))))
    return found


def kept(relative: str, found: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    decision = False
    for keep, pattern in found:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            decision = keep
    return decision


def files(root: Path, ignore_file: Path) -> dict[str, Source]:
    """The files of `root` the ignore file keeps, by their path in the context. Only the
    top-level entries a `!` line names are walked (never .venv or .data)."""
    found = rules(ignore_file)
    tops = {pattern.pattern.split("/")[0].replace("\\", "") for keep, pattern in found if keep}
    selected: dict[str, Source] = {}
    for top in sorted(tops):
        start = root / top
        paths = [start] if start.is_file() else sorted(p for p in start.rglob("*") if p.is_file())
        for path in paths:
            relative = path.relative_to(root).as_posix()
            if kept(relative, found):
                selected[relative] = path
    return selected


def _add(tar: tarfile.TarFile, name: str, source: Source) -> None:
    if isinstance(source, Path):
        info = tar.gettarinfo(str(source), arcname=name)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0  # the same content gives the same layer, whenever it was checked out
        with open(source, "rb") as data:
            tar.addfile(info, data)
        return
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(source), 0o644
    tar.addfile(info, io.BytesIO(source))


def build(tag: str, context: dict[str, Source], dockerfile: str, args: dict[str, str], log: Path) -> float:
    """Builds `tag` from the context (streamed to the engine) with the Dockerfile at that path
    in it; returns the seconds it took. The engine's output goes to `log`."""
    argv = ["docker", "build", "--tag", tag, "--file", dockerfile]
    argv += [item for key, value in sorted(args.items()) for item in ("--build-arg", f"{key}={value}")]
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*argv, "-"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, env=engine.env()
        )
        assert proc.stdin is not None
        try:
            with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                for name, source in sorted(context.items()):
                    _add(tar, name, source)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the engine stopped reading: its log says why
        code = proc.wait(timeout=3600)
    if code != 0:
        lines = log.read_text(errors="replace").strip().splitlines()
        raise SetupError(f"building {tag} failed ({log}): {' | '.join(lines[-4:])}")
    return time.monotonic() - t0

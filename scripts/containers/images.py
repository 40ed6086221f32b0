"""The stack's images, built from the Dockerfiles in deploy/ and tagged daprml/<name>:<version>
(the project's version, pyproject.toml):

| image | Dockerfile | runs |
|---|---|---|
| python | deploy/Dockerfile | the six Python services (`python -m services.<name>`) |
| notifier | deploy/notifier.Dockerfile | the Node.js notifier |
| daprd, placement, scheduler, sentry | deploy/dapr.Dockerfile | the Dapr runtime's programs |
| redis | deploy/redis.Dockerfile | Redis, its password from a file |
| prometheus, jaeger | deploy/prometheus.Dockerfile, deploy/jaeger.Dockerfile | the observability profile's |

Two kinds of bases (DAPRML_IMAGE_BASES): `official` (the Dockerfiles' defaults: python, node,
debian, redis, prom/prometheus, jaegertracing/jaeger and daprio/dapr from Docker Hub) or `local`,
for a machine without a registry: the Debian base made with debootstrap
(scripts/containers/base.py), the Dapr programs and Jaeger scripts/install-dapr built
(.data/dapr.env) and this machine's node, each put in an image of its own that the Dockerfiles
copy from, as they would copy from the official images. By default `local` where it
can be made (Linux, root, apt), else `official`.
"""

import os
import shutil
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from scripts.containers import base, context, engine
from scripts.infra import observability
from scripts.proc import DATA, ROOT, SetupError, read_env_file

DAPR_VERSION = "1.18.2"  # scripts/install-dapr's, the official daprio/dapr tag the Dockerfile names
DAPR_PROGRAMS = ("daprd", "placement", "scheduler", "sentry")
LOGS = DATA / "containers" / "logs"
SOURCE_LABEL = "io.daprml.source"  # what a carrier image was made from: made again when that changes


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def tag(name: str) -> str:
    return f"daprml/{name}:{version()}"


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: str  # relative to the repository; its context: <dockerfile>.dockerignore
    args: dict[str, str] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return tag(self.name)


IMAGES = (
    Image("python", "deploy/Dockerfile"),
    Image("notifier", "deploy/notifier.Dockerfile"),
    *(Image(program, "deploy/dapr.Dockerfile", {"PROGRAM": program}) for program in DAPR_PROGRAMS),
    Image("redis", "deploy/redis.Dockerfile"),
    Image("prometheus", "deploy/prometheus.Dockerfile"),
    Image("jaeger", "deploy/jaeger.Dockerfile"),
)


def bases() -> str:
    """`local` or `official` (see the module's docstring)."""
    chosen = os.environ.get("DAPRML_IMAGE_BASES", "").strip()
    if chosen in ("local", "official"):
        return chosen
    if chosen:
        raise SetupError(f"DAPRML_IMAGE_BASES={chosen}: say local or official")
    can_make = os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get") is not None
    return "local" if can_make else "official"


def _program_version(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return (done.stdout or done.stderr).strip().splitlines()[0].strip() if done.returncode == 0 else ""


def _carrier(image: str, files: dict[str, Path], destination: str) -> str:
    """An image FROM scratch holding the files at `destination` (made again when they change)."""
    source = ",".join(
        f"{name}:{path.stat().st_size}:{int(path.stat().st_mtime)}" for name, path in sorted(files.items())
    )
    if base.label(image, SOURCE_LABEL) == source:
        return image
    engine.say(f"making {image} from {', '.join(str(p) for p in files.values())}")
    dockerfile = f'FROM scratch\nCOPY {" ".join(sorted(files))} {destination}\nLABEL {SOURCE_LABEL}="{source}"\n'
    contents: dict[str, context.Source] = {"Dockerfile": dockerfile.encode(), **files}
    context.build(image, contents, "Dockerfile", {}, LOGS / f"{image.split('/')[1].split(':')[0]}.log")
    return image


def dapr_binaries() -> str:
    """daprd, placement, scheduler and sentry as scripts/install-dapr built them, at / (where
    the official daprio/dapr image has them)."""
    programs = read_env_file(DATA / "dapr.env")
    files = {name: Path(programs[f"DAPRML_{name.upper()}"]) for name in DAPR_PROGRAMS}
    found = _program_version([str(files["daprd"]), "--version"])
    if found != DAPR_VERSION:
        raise SetupError(f"{files['daprd']} is version {found or '?'}, not {DAPR_VERSION}: run scripts/install-dapr")
    return _carrier(f"daprml/dapr-binaries:{DAPR_VERSION}", files, "/")


def node_binary() -> str:
    """This machine's node (20 or newer, as the notifier needs) at /usr/local/bin/node, where the
    official node image has it."""
    node = shutil.which("node")
    found = _program_version([node, "--version"]) if node else ""
    if not found.startswith("v") or int(found[1:].split(".")[0]) < 20:
        raise SetupError(f"the notifier's image needs node 20 or newer on this machine (found {found or 'none'})")
    return _carrier(f"daprml/node-binary:{found[1:]}", {"node": Path(node or "")}, "/usr/local/bin/")


def jaeger_binary() -> str:
    """The Jaeger scripts/install-dapr built, at /cmd/jaeger/jaeger-linux (where the official
    jaegertracing/jaeger image has it)."""
    program = observability.jaeger_program()
    if program is None:
        raise SetupError("the jaeger image needs the Jaeger scripts/install-dapr builds (.data/dapr.env): run it")
    return _carrier("daprml/jaeger-binary:built", {"jaeger-linux": Path(program)}, "/cmd/jaeger/")


def build_args(kind: str) -> dict[str, dict[str, str]]:
    """The build arguments of each image: none for the official bases (the Dockerfiles'
    defaults), the local images otherwise (made here when missing)."""
    if kind == "official":
        return {image.name: dict(image.args) for image in IMAGES}
    final, build = base.ensure()
    dapr, node, jaeger = dapr_binaries(), node_binary(), jaeger_binary()
    extra = {
        "python": {"BUILD_BASE": build},
        "notifier": {"NODE": node},
        "jaeger": {"JAEGER": jaeger},
        **{p: {"DAPR": dapr} for p in DAPR_PROGRAMS},
    }
    return {image.name: {**image.args, "BASE": final, **extra.get(image.name, {})} for image in IMAGES}


def build_all(only: list[str] | None = None) -> dict[str, float]:
    """Builds the images (all, or those named), two at a time: the Python image (pip, mostly
    waiting on the network) beside the others one after another, on two cores. Returns the
    seconds each took."""
    chosen = [image for image in IMAGES if only is None or image.name in only]
    args = build_args(bases())
    for image in chosen:
        engine.say(f"building {image.tag} from {image.dockerfile} (log: {LOGS / (image.name + '.log')})")

    def one(image: Image) -> tuple[str, float]:
        contents = context.files(ROOT, ROOT / f"{image.dockerfile}.dockerignore")
        contents[image.dockerfile] = ROOT / image.dockerfile
        seconds = context.build(image.tag, contents, image.dockerfile, args[image.name], LOGS / f"{image.name}.log")
        engine.say(f"built {image.tag} in {seconds:.0f}s")
        return image.name, seconds

    def rest(images: list[Image]) -> list[tuple[str, float]]:
        return [one(image) for image in images]

    python = [image for image in chosen if image.name == "python"]
    others = [image for image in chosen if image.name != "python"]
    with ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(rest, python), pool.submit(rest, others)]
        return dict(pair for job in jobs for pair in job.result())


def sizes() -> dict[str, int]:
    """Bytes of each image of the stack (0 when it is missing)."""
    found = {}
    for image in IMAGES:
        done = engine.run(["docker", "image", "inspect", "--format", "{{.Size}}", image.tag], timeout_s=30, check=False)
        found[image.name] = int(done.stdout.strip() or 0) if done.returncode == 0 else 0
    return found


def missing() -> list[str]:
    return [image.name for image in IMAGES if not base.image_exists(image.tag)]

"""The local base images, for a machine that cannot pull from a registry: Debian bookworm made
with `debootstrap --variant=minbase` from the machine's own Debian mirror and imported.

- `daprml/base:bookworm`: the root filesystem as debootstrap made it (without apt's caches).
  Final images start from it; they need no internet.
- `daprml/base-build:bookworm`: the same plus the host's certificate authorities, for the build
  stages that fetch from PyPI. Some machines reach the internet only through a proxy that
  presents certificates of a CA of its own (one is made at the machine's boot), so the bundle is
  read from the host's files when the image is made: never stored in the repository, and never in
  a final image. A new bundle (after a reboot) makes this image again.

The root filesystem's tarball is kept in the machine's cache folder: a second engine (or a
pruned one) imports it in seconds instead of running debootstrap again (about a minute).
"""

import hashlib
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from scripts.containers import context, engine
from scripts.proc import SetupError

SUITE = "bookworm"
BASE = f"daprml/base:{SUITE}"
BUILD_BASE = f"daprml/base-build:{SUITE}"
ROOTFS = engine.CACHE / "base" / f"debian-{SUITE}-minbase.tar"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
HOST_EXTRA = Path("/usr/local/share/ca-certificates")
# Where the build image keeps the bundle: a file of our own, which no package install rewrites.
IMAGE_BUNDLE = "/usr/local/share/daprml-build/ca-bundle.pem"
CA_LABEL = "io.daprml.host-ca"


def mirror(sources: list[Path] | None = None) -> str:
    """The Debian mirror the host's apt uses (its sources.list or deb822 .sources files)."""
    files = (
        sources if sources is not None else [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    )
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^\s*(?:deb\s+(?:\[[^]]*\]\s+)?|URIs:\s*)(\S+)", text, re.MULTILINE):
            if "security" not in uri and uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def host_bundle() -> bytes:
    """The host's CA bundle with its locally added authorities (update-ca-certificates puts them
    in the bundle, but a bundle made before one was added would lack it)."""
    parts = [HOST_BUNDLE.read_bytes()] if HOST_BUNDLE.exists() else []
    parts += [path.read_bytes() for path in sorted(HOST_EXTRA.glob("*.crt"))]
    if not parts:
        raise SetupError(f"no CA bundle on this host ({HOST_BUNDLE}): builds could not fetch from PyPI")
    return b"\n".join(part.rstrip(b"\n") for part in parts) + b"\n"


def image_exists(name: str) -> bool:
    return engine.run(["docker", "image", "inspect", name], timeout_s=30, check=False).returncode == 0


def label(name: str, key: str) -> str:
    done = engine.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{key}"}}}}', name],
        timeout_s=30,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def rootfs() -> Path:
    """The cached root filesystem tarball, made with debootstrap when missing."""
    if ROOTFS.exists():
        return ROOTFS
    engine.install_packages(["debootstrap"])
    source = mirror()
    engine.say(f"making the Debian {SUITE} base with debootstrap from {source} (about a minute, once per machine)")
    ROOTFS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ROOTFS.parent) as tmp:
        root = Path(tmp) / "rootfs"
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(root), source], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SetupError(f"debootstrap failed: {(done.stderr or done.stdout).strip()[-400:]}")
        # apt's downloaded packages and lists: not needed in an image (a build runs apt-get update).
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / cache).glob("*"):
                if path.is_file():
                    path.unlink()
        security = source.rsplit("/", 1)[0] + "/debian-security"
        (root / "etc/apt/sources.list").write_text(
            f"deb {source} {SUITE} main\ndeb {source} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n"
        )
        partial = ROOTFS.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=".")
        partial.rename(ROOTFS)
        shutil.rmtree(root, ignore_errors=True)
    return ROOTFS


def ensure() -> tuple[str, str]:
    """The local base images (final, build), made when missing or when the host's CA bundle
    changed."""
    if not image_exists(BASE):
        tarball = rootfs()
        engine.say(f"importing {tarball.name} as {BASE}")
        with open(tarball, "rb") as data:
            changes = ["--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["bash"]']
            engine.run(["docker", "import", *changes, "-", BASE], timeout_s=300, stdin=data)
    bundle = host_bundle()
    digest = hashlib.sha256(bundle).hexdigest()[:16]
    if label(BUILD_BASE, CA_LABEL) != digest:
        dockerfile = (
            f"FROM {BASE}\n"
            f"COPY ca-bundle.pem {IMAGE_BUNDLE}\n"
            f"ENV SSL_CERT_FILE={IMAGE_BUNDLE} PIP_CERT={IMAGE_BUNDLE} REQUESTS_CA_BUNDLE={IMAGE_BUNDLE} "
            f"NODE_EXTRA_CA_CERTS={IMAGE_BUNDLE}\n"
            f'LABEL {CA_LABEL}="{digest}"\n'
        )
        engine.say(f"making {BUILD_BASE} (the host's CA bundle, for fetching from PyPI in builds)")
        files: dict[str, Path | bytes] = {"Dockerfile": dockerfile.encode(), "ca-bundle.pem": bundle}
        context.build(BUILD_BASE, files, "Dockerfile", {}, engine.CACHE / "logs" / "base-build.log")
    return BASE, BUILD_BASE

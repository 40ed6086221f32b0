"""The stack in containers (docker-compose.yml):

    python -m scripts.containers up [--no-build]  engine (started if none answers), images, stack
    python -m scripts.containers down             stack removed (its volumes too); the engine
                                                  stopped if `up` started it and nothing else runs
    python -m scripts.containers build [IMAGE..]  the images only (all by default)
    python -m scripts.containers status           the gateway's view of the services
    python -m scripts.containers configs          deploy/compose/config/ and jaeger.yaml made again

DAPRML_GATEWAY_PORT picks the published port (8000), DAPRML_COMPOSE_PROJECT the project name
(daprml), DAPRML_IMAGE_BASES the bases (local or official: scripts/containers/images.py).
"""

import sys
import time

from scripts.containers import configs, engine, images
from scripts.containers.stack import from_env
from scripts.proc import SetupError
from scripts.stack import print_status


def build(only: list[str] | None = None) -> None:
    t0 = time.monotonic()
    images.build_all(only)
    sizes = images.sizes()
    engine.say(f"images built in {time.monotonic() - t0:.0f}s ({images.bases()} bases):")
    for name, size in sizes.items():
        if only is None or name in only:
            print(f"  {images.tag(name):28} {size / 1e6:6.0f} MB")


def up(no_build: bool) -> None:
    from_env().check_ports()  # before the engine starts: nothing to undo
    found = engine.ensure()
    engine.say(f"engine {found.version}" + (" (started here; `down` stops it)" if found.started else ""))
    if not no_build or images.missing():
        build()
    stack = from_env()
    engine.say(f"starting project {stack.project} (credentials in {stack.secrets_dir})")
    try:
        seconds = stack.up()
    except SetupError:
        # As `make up`: a start that failed leaves nothing running (the error says what failed).
        stack.down()
        engine.stop_if_ours()
        raise
    engine.say(f"stack ready in {seconds:.0f}s")
    print_status(stack.status())
    engine.say(f"gateway at {stack.gateway_url} (API docs at {stack.gateway_url}/docs)")
    if stack.observability:
        engine.say(
            f"Prometheus at http://127.0.0.1:{stack.prometheus_port}, Jaeger at http://127.0.0.1:{stack.jaeger_port} "
            f"(the console's operations page reads both; DAPRML_OBSERVABILITY=off leaves them out)"
        )
    engine.say(
        f"the admin key is in {stack.workdir / '.data' / 'admin-key'}: "
        '-H "Authorization: Bearer $(cat .data/admin-key)"'
    )


def down() -> None:
    stack = from_env()
    if engine.answers():
        stack.down()
        left = stack.leftovers()
        engine.say(f"project {stack.project} removed" + (f"; left: {', '.join(left)}" if left else ""))
    engine.stop_if_ours()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("up", "down", "build", "status", "configs"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "up":
            up(no_build="--no-build" in rest)
        elif command == "down":
            down()
        elif command == "build":
            engine.ensure()
            build(rest or None)
        elif command == "status":
            print_status(from_env().status())
        else:
            for path in [*configs.write(), configs.write_jaeger()]:
                print(path)
    except SetupError as exc:
        print(f"containers: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The console's files: the ones in static/, listed by name once at start-up, so that nothing a
client sends ever becomes a path. Only files of the types below are listed (the page, its
native ES modules, styles, the vendored libraries and their licences).

Vendored, with their licences: Chart.js 4.6.1 (static/vendor/chart.umd.js) and Swagger UI
5.35.0 (swagger-ui-bundle.js and swagger-ui.css, from `npm pack swagger-ui-dist@5.35.0`; the
docs page pins both by their SHA-384, see docs.html). ReDoc is not served: it needs inline
styles, which the console's policy (api.py) refuses.
"""

from pathlib import Path

FILES = Path(__file__).with_name("static")
# A module script must come with a JavaScript type: with nosniff, a browser runs no other.
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


class ConsoleFiles:
    def __init__(self, folder: Path = FILES):
        self.served: dict[str, Path] = (
            {
                path.relative_to(folder).as_posix(): path
                for path in sorted(folder.rglob("*"))
                if path.is_file() and path.suffix in TYPES
            }
            if folder.is_dir()
            else {}
        )

    def find(self, name: str) -> tuple[Path, str] | None:
        """The file served as /console/<name>, and its content type; None for any other name."""
        path = self.served.get(name)
        return None if path is None else (path, TYPES[path.suffix])

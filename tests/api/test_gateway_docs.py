"""The API docs page: Swagger UI from the gateway's own pinned files under the console's
policy, with its set-up code in a file (no inline script), and no ReDoc."""

import base64
import hashlib
import posixpath
import re
from html.parser import HTMLParser

import pytest

from services.gateway.console.api import HEADERS
from services.gateway.console.service import ConsoleFiles

HTML = ("docs.html", "index.html")
SERVED = ConsoleFiles().served


class Tags(HTMLParser):
    """Every script and stylesheet a page loads, and whether it has inline script or style."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(f"<{tag}> attribute")
        if tag == "script":
            self._in = "script"
            self.loads.append(found)
        elif tag == "style":
            self._in = "style"
        elif tag == "link" and found.get("rel") == "stylesheet":
            self.loads.append(found)

    def handle_data(self, data):
        if self._in and data.strip():
            self.inline.append(self._in)

    def handle_endtag(self, tag):
        self._in = None


def parsed(name: str) -> Tags:
    tags = Tags()
    tags.feed(SERVED[name].read_text())
    return tags


@pytest.fixture
def anonymous(make_client):
    client = make_client("gateway")
    client.headers.pop("authorization")
    return client


def test_docs_is_swagger_ui_from_the_gateways_own_files_under_the_consoles_policy(anonymous):
    page = anonymous.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == HEADERS["content-security-policy"]
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "unsafe" not in policy and "frame-ancestors 'none'" in policy
    sources = [load.get("src") or load.get("href") for load in parsed("docs.html").loads]
    assert sources == ["/console/vendor/swagger-ui.css", "/console/vendor/swagger-ui-bundle.js", "/console/docs.js"]
    for source in sources:
        assert anonymous.get(source).status_code == 200, source


@pytest.mark.parametrize("name", HTML)
def test_the_pages_have_no_inline_script_or_style_and_load_nothing_from_elsewhere(name):
    tags = parsed(name)
    assert tags.inline == []
    assert all((load.get("src") or load.get("href") or "").startswith("/console/") for load in tags.loads)


def test_the_vendored_swagger_ui_is_pinned_by_its_hash_in_the_page():
    for load in parsed("docs.html").loads:
        source = load.get("src") or load.get("href") or ""
        if "/vendor/" not in source:
            continue
        data = SERVED[source.removeprefix("/console/")].read_bytes()
        assert load.get("integrity") == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode(), source
    assert {"vendor/swagger-ui-LICENSE.md", "vendor/swagger-ui-NOTICE.md"} <= set(SERVED)


def test_the_docs_set_up_keeps_a_key_out_of_storage_and_sends_nothing_to_swagger_io():
    setup = SERVED["docs.js"].read_text()
    assert re.search(r"persistAuthorization:\s*false", setup) and re.search(r"validatorUrl:\s*null", setup)
    assert 'url: "/openapi.json"' in setup


def test_redoc_and_fastapis_cdn_pages_are_gone(anonymous):
    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert anonymous.get(path).status_code == 404, path
    assert "cdn.jsdelivr.net" not in anonymous.get("/docs").text


def console_modules() -> dict[str, str]:
    """The console's own scripts (its ES modules), by name: not the vendored libraries, nor the
    docs page's set-up."""
    return {
        name: path.read_text()
        for name, path in SERVED.items()
        if name.endswith(".js") and not name.startswith("vendor/") and name != "docs.js"
    }


def test_the_console_keeps_its_key_in_memory_and_opens_the_docs_without_a_handle_on_itself():
    for name, script in console_modules().items():
        assert "sessionStorage.setItem" not in script and "localStorage" not in script, name
    page = SERVED["index.html"].read_text()
    assert re.search(r'<a href="/docs"[^>]*target="_blank"[^>]*rel="noopener noreferrer"', page)


def test_the_console_is_native_modules_each_served_as_javascript(anonymous):
    """The page loads one module; every module it imports, and theirs, is served as JavaScript
    (a browser runs a module of no other type), and no module is left out."""
    modules = [load for load in parsed("index.html").loads if load.get("type") == "module"]
    assert [m.get("src") for m in modules] == ["/console/console.js"]
    seen: set[str] = set()
    todo = ["console.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        reply = anonymous.get(f"/console/{name}")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/javascript"), name
        assert reply.headers["content-security-policy"] == HEADERS["content-security-policy"]
        for imported in re.findall(r'^import [^;]* from "(\.{1,2}/[^"]+)";$', reply.text, re.M):
            todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(name), imported)))
    assert seen == set(console_modules())


def test_the_console_asks_the_api_which_metrics_are_better_lower():
    scripts = "".join(console_modules().values())
    assert "/api/metrics" in scripts and not any(f'"{metric}"' in scripts for metric in ("rmse", "mae", "log_loss"))

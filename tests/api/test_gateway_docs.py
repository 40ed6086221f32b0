"""The API docs page: Swagger UI from the gateway's own pinned files under the console's
policy, with its set-up code in a file (no inline script), and no ReDoc."""

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from services.gateway import console

HTML = ("docs.html", "index.html")


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
    tags.feed(console.SERVED[name].read_text())
    return tags


@pytest.fixture
def anonymous(make_client):
    client = make_client("gateway")
    client.headers.pop("authorization")
    return client


def test_docs_is_swagger_ui_from_the_gateways_own_files_under_the_consoles_policy(anonymous):
    page = anonymous.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == console.HEADERS["content-security-policy"]
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
        data = console.SERVED[source.removeprefix("/console/")].read_bytes()
        assert load.get("integrity") == "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode(), source
    assert {"vendor/swagger-ui-LICENSE.md", "vendor/swagger-ui-NOTICE.md"} <= set(console.SERVED)


def test_the_docs_set_up_keeps_a_key_out_of_storage_and_sends_nothing_to_swagger_io():
    setup = console.SERVED["docs.js"].read_text()
    assert re.search(r"persistAuthorization:\s*false", setup) and re.search(r"validatorUrl:\s*null", setup)
    assert 'url: "/openapi.json"' in setup


def test_redoc_and_fastapis_cdn_pages_are_gone(anonymous):
    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert anonymous.get(path).status_code == 404, path
    assert "cdn.jsdelivr.net" not in anonymous.get("/docs").text


def test_the_console_keeps_its_key_in_memory_and_opens_the_docs_without_a_handle_on_itself():
    script = console.SERVED["console.js"].read_text()
    assert "sessionStorage.setItem" not in script and "localStorage" not in script
    page = console.SERVED["index.html"].read_text()
    assert re.search(r'<a href="/docs"[^>]*target="_blank"[^>]*rel="noopener noreferrer"', page)

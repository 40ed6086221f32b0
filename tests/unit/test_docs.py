"""The README and docs/ stay true to the tree they describe.

- Every relative link and `#anchor` in README.md and docs/ resolves: the file or folder exists,
  and an anchor is a GitHub heading slug (or an explicit `<a id>`) of the page it points at.
- Every path written in backticks (`services/...`, `tests/...::test_name`, ...) exists, and a
  named test function is defined in its file; a placeholder (`services/<name>/`) is not
  checked, nor a name a page declares as an example (`<!-- example-names: monitoring -->`).
- Every shell block in README.md says how it is checked, on the line before it: either
  `<!-- exercised-by: tests/...py::test_name[, ...] -->`, naming tests that exist in a folder
  `make test` runs, or `<!-- illustrative -->` (optionally `<!-- illustrative: why -->`). Other
  README blocks name a language (`text` for output), so a shell block cannot pass unmarked.
- The README stays short (new features get a page in docs/), and docs/index.md maps every page.
"""

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
README_MAX_LINES = 200

SHELL = {"sh", "bash", "shell", "console", "zsh"}
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
# [text](target "title"), the text possibly holding [brackets] and line breaks; images too.
LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
# Names a page uses for things that do not exist yet ("add a service: say `monitoring`"):
# `<!-- example-names: monitoring -->`; a path with a segment of that name is not checked.
EXAMPLE_NAMES = re.compile(r"<!--\s*example-names:\s*(.+?)\s*-->")
MARKER = re.compile(r"^<!--\s*(?:exercised-by:\s*(?P<tests>.+?)|illustrative(?::.*)?)\s*-->$")
# A path in backticks worth checking: under one of the repository's top folders, with no
# placeholder (`<name>`, `*`, `...`).
PATH = re.compile(r"^(?!.*\.\.\.)(?:services|tests|scripts|bench|components|deploy|dapr|docs)/[\w./-]*(?:::[\w:]+)?$")


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # 1-based line of the opening fence
    marker: str | None  # the line before it, when that is an HTML comment


@dataclass(frozen=True)
class Page:
    path: Path
    prose: str  # the text with fenced blocks blanked (line numbers kept)
    blocks: tuple[Block, ...]

    @property
    def example_names(self) -> frozenset[str]:
        return frozenset(n.strip() for names in EXAMPLE_NAMES.findall(self.prose) for n in names.split(","))

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    def line_of(self, offset: int) -> int:
        return self.prose.count("\n", 0, offset) + 1


@cache
def read(path: Path) -> Page:
    lines = path.read_text(encoding="utf-8").splitlines()
    prose: list[str] = []
    blocks: list[Block] = []
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
            before = next((previous.strip() for previous in reversed(lines[: number - 1]) if previous.strip()), "")
            blocks.append(Block(opened.group(2).lower(), number, before if before.startswith("<!--") else None))
            prose.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            prose.append("")
        else:
            prose.append(line)
    return Page(path, "\n".join(prose), tuple(blocks))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped
    (letters, digits, `_` and `-` stay), spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = LINK.sub(lambda m: m.group(1), text)
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    page = read(path)
    seen: dict[str, int] = {}
    found = set(HTML_ANCHOR.findall(page.prose))
    for line in page.prose.splitlines():
        heading = HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")  # repeated headings: -1, -2, ...
    return frozenset(found)


def spans(page: Page) -> Iterator[tuple[int, str]]:
    for match in CODE_SPAN.finditer(page.prose):
        yield page.line_of(match.start()), match.group(2).strip()


def links(page: Page) -> Iterator[tuple[int, str]]:
    text = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), page.prose)  # a link in backticks is no link
    for match in LINK.finditer(text):
        yield page.line_of(match.start()), match.group(2)
    for match in REFERENCE.finditer(text):
        yield page.line_of(match.start()), match.group(1)


def link_problem(page: Page, target: str) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
        return None
    where, _, anchor = target.partition("#")
    file = (page.path.parent / where).resolve() if where else page.path
    if not file.exists():
        return f"{file.relative_to(ROOT) if file.is_relative_to(ROOT) else file} does not exist"
    if anchor and file.suffix == ".md" and anchor not in anchors(file):
        known = ", ".join(sorted(anchors(file)))
        return f"no heading with the anchor #{anchor} in {file.relative_to(ROOT)} (its anchors: {known})"
    return None


@cache
def functions(path: Path) -> frozenset[str]:
    """`name` and `Class::name` of every function defined in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found.add(f"{node.name}::{item.name}")
    return frozenset(found)


def is_example(span: str, names: frozenset[str]) -> bool:
    return any(Path(segment).stem in names for segment in span.partition("::")[0].split("/"))


def path_problem(reference: str) -> str | None:
    where, _, function = reference.partition("::")
    path = ROOT / where.rstrip("/")
    if not path.exists():
        return f"{where} does not exist"
    if function and function not in functions(path):
        return f"{where} defines no {function}"
    return None


@cache
def make_test_folders() -> tuple[str, ...]:
    """The test folders `make test` hands to pytest (its recipe, and the targets it runs)."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test:.*\n((?:\t.*\n?)*)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no `test` target"
    return tuple(re.findall(r"\btests/[\w/]+", recipe.group(1)))


def exercised_problem(reference: str) -> str | None:
    where, _, function = reference.partition("::")
    if not function.split("::")[-1].startswith("test"):
        return f"{reference} names no test function (write path::test_name)"
    if not any(where.startswith(folder.rstrip("/") + "/") for folder in make_test_folders()):
        return f"{where} is not in a folder `make test` runs ({', '.join(make_test_folders())})"
    return path_problem(reference)


def page_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_relative_link_and_anchor_resolves(path):
    page = read(path)
    broken = [f"{page.name}:{line}: ({target}) {problem}" for line, target in links(page)
              if (problem := link_problem(page, target))]  # fmt: skip
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_path_in_backticks_exists(path):
    page = read(path)
    missing = [f"{page.name}:{line}: `{span}`: {problem}" for line, span in spans(page)
               if PATH.match(span) and not is_example(span, page.example_names)
               and (problem := path_problem(span))]  # fmt: skip
    assert not missing, (
        "paths that do not exist (write a placeholder as <name>, or declare an example's name in "
        "<!-- example-names: name -->):\n" + "\n".join(missing)
    )


def test_every_shell_block_in_the_readme_is_exercised_by_a_test_or_marked_illustrative():
    page = read(README)
    assert page.blocks, "README.md has no code block: the checks below would prove nothing"
    problems = []
    for block in page.blocks:
        where = f"README.md:{block.line}"
        if not block.language:
            problems.append(f"{where}: a fenced block without a language (`sh`, `text`, ...)")
            continue
        if block.language not in SHELL:
            continue
        marker = MARKER.match(block.marker or "")
        if not marker:
            problems.append(
                f"{where}: a {block.language} block needs `<!-- exercised-by: tests/...py::test_name -->` "
                f"or `<!-- illustrative -->` on the line before it (found: {block.marker or 'nothing'})"
            )
            continue
        for reference in (marker.group("tests") or "").split(","):
            if reference.strip() and (problem := exercised_problem(reference.strip())):
                problems.append(f"{where}: exercised-by {problem}")
    assert not problems, "\n".join(problems)


def test_the_readme_stays_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): document new features in a page of docs/ "
        "and link it from docs/index.md"
    )


def test_the_map_links_every_page():
    index = read(DOCS / "index.md")
    linked = {(DOCS / target.partition("#")[0]).resolve() for _, target in links(index)}
    unmapped = [page_id(p) for p in PAGES if p.parent == DOCS and p.name != "index.md" and p.resolve() not in linked]
    assert not unmapped, f"pages docs/index.md does not link: {unmapped}"


def test_the_sites_navigation_has_every_page():
    """mkdocs.yml lists the pages by hand; a page left out would be built but not findable."""
    import yaml

    def pages(nav: object) -> set[str]:
        if isinstance(nav, str):
            return {nav}
        items = nav.values() if isinstance(nav, dict) else nav if isinstance(nav, list) else []
        return set().union(*(pages(item) for item in items))

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    missing = {p.relative_to(DOCS).as_posix() for p in PAGES if p.parent == DOCS} - pages(config["nav"])
    assert not missing, f"pages mkdocs.yml's nav does not list: {sorted(missing)}"


def test_slugs_are_githubs():
    assert slug("Calls between services: retries, no circuit breakers") == (
        "calls-between-services-retries-no-circuit-breakers"
    )
    assert slug("Locally (`make up`, `make run`, `make test`)") == "locally-make-up-make-run-make-test"
    assert slug("On Kubernetes (deploy/k8s)") == "on-kubernetes-deployk8s"
    assert slug("The [CLI](cli.md) and `daprml_x`") == "the-cli-and-daprml_x"


def test_placeholders_and_declared_example_names_are_not_checked_as_paths():
    assert not PATH.match("services/<name>/app.py") and not PATH.match("tests/api/...")
    assert PATH.match("tests/integration/test_cli.py::test_status_lists_every_service")
    names = frozenset({"monitoring"})
    assert is_example("services/monitoring/", names) and is_example("deploy/k8s/base/apps/monitoring.yaml", names)
    assert not is_example("services/gateway/app.py", names)

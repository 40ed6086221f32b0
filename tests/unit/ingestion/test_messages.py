"""What ingestion tells a person names no HTTP route: the same use cases answer whatever
door the request came through, and routes change without the messages noticing."""

import ast
import re
from pathlib import Path

from services.ingestion.domain import errors

INGESTION = Path(__file__).resolve().parents[3] / "services" / "ingestion"
ERRORS = {name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)}
ROUTE = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\b|/api/|\?\w+=")


def messages(path: Path) -> list[str]:
    """The text of every error made in a module (an exception class called, or `cls` in one of
    the errors' own constructors)."""
    texts = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and (node.func.id == "cls" or node.func.id.endswith("Error") or node.func.id in ERRORS)
        ):
            texts += [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
    return texts


def test_error_messages_of_the_use_cases_and_the_domain_name_no_route():
    sources = [*(INGESTION / "service").glob("*.py"), INGESTION / "repository.py", *(INGESTION / "domain").glob("*.py")]
    found = {str(p.relative_to(INGESTION)): messages(p) for p in sources}
    use_cases = [text for name, texts in found.items() if name.startswith("service/") for text in texts]
    assert len(use_cases) > 20, "the messages are found"
    offenders = {f"{name}: {text!r}" for name, texts in found.items() for text in texts if ROUTE.search(text)}
    assert offenders == set()

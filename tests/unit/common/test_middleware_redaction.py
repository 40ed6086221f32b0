"""No secret reaches a log line: the filter on every service's log handler (as serve() sets it
up) takes out secret query parameter values and anything shaped like an API key."""

import pytest

from services.common.middleware import redact, request_id
from services.gateway.keys import Role, issue
from tests.recorders import written_log

KEY, _ = issue("probe", [Role.ADMIN])
SECRET = KEY.split("_", 2)[2]


@pytest.fixture
def written():
    """A logger writing through a handler like serve()'s; the text it wrote, after the test."""
    with written_log("probe.redaction", "%(levelname)s %(name)s [%(request_id)s]: %(message)s") as log:
        yield log


def test_an_access_log_line_keeps_the_path_and_loses_the_key_in_its_query(written):
    logger, out = written
    # What uvicorn's access logger sends: its arguments, formatted by the handler.
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/models?api_key={KEY}&limit=5", "1.1", 401)
    line = out.getvalue()
    assert SECRET not in line
    assert '"GET /api/models?api_key=[redacted]&limit=5 HTTP/1.1" 401' in line


@pytest.mark.parametrize(
    "name", ["api_key", "key", "token", "access_token", "secret", "client_secret", "password", "X-Amz-Signature"]
)
def test_every_parameter_whose_name_suggests_a_secret_loses_its_value(name):
    assert redact(f"GET /a?offset=1&{name}=hunter2&limit=2") == f"GET /a?offset=1&{name}=[redacted]&limit=2"


def test_other_parameters_and_paths_are_left_as_they_are():
    line = "GET /api/training/jobs?dataset=iris&status=RUNNING&offset=0 HTTP/1.1"
    assert redact(line) == line
    assert redact("dataset dml_test_data v1") == "dataset dml_test_data v1"  # a name, not a key


def test_a_key_anywhere_in_a_line_loses_its_secret_and_keeps_its_id(written):
    logger, out = written
    key_id = KEY.split("_")[1]
    logger.warning("HTTP Request: POST http://127.0.0.1:3500/v1.0/invoke/x/method/y?q=%s", KEY)
    logger.info("a body: %r", {"records": [{"note": KEY}]})
    assert SECRET not in out.getvalue() and out.getvalue().count(f"dml_{key_id}_[redacted]") == 2


def test_a_traceback_and_a_request_id_that_hold_a_key_are_redacted_too(written):
    logger, out = written
    token = request_id.set(KEY)  # a client may send anything sane-looking as its request id
    try:
        raise ValueError(f"could not parse {KEY}")
    except ValueError:
        logger.exception("failed")
    finally:
        request_id.reset(token)
    assert "ValueError: could not parse dml_" in out.getvalue() and SECRET not in out.getvalue()

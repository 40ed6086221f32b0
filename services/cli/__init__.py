"""daprml: the command-line client of the gateway's public HTTP API (typer + rich).

It imports no service code: it is the API's first client, as a user's script would be. It
speaks the API's words from services/common/contracts (a task's names, say), which import
nothing but pydantic.

    daprml [--url URL] [--key KEY] COMMAND ...

The gateway: --url, else $DAPRML_URL, else http://127.0.0.1:8000. The API key: --key, else
$DAPRML_API_KEY, else the file .data/admin-key in the current directory (the local stack's
development key); sent as `Authorization: Bearer <key>` when there is one.

Results go to stdout (--json: the raw answer, on every read command), progress bars and
errors to stderr; an error is one line, `daprml: <what went wrong>`.

Exit codes:
    0    ok
    1    the server refused the request (4xx other than 401/403, 5xx), a training job failed,
         or `status` found a service down
    2    usage: a bad option or argument, a file that is missing or of the wrong kind
    3    cannot reach the gateway (connection refused, timed out)
    4    authentication: the gateway answered 401 or 403 (a missing or wrong key)
    130  interrupted (Ctrl-C); `datasets upload` continues where it stopped when run again
"""

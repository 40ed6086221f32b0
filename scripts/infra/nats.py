"""The JetStream streams the NATS profile's pub/sub component needs, made over the NATS protocol.

Hand-written on purpose: it is one request-reply per topic at start-up, about twenty lines of
the text protocol, where the maintained client (nats-py) is asyncio-only and would be a
dependency of the development machine for this alone (it is not installed here)."""

import json
import socket

from scripts.proc import SetupError

STREAM_EXISTS = 10058  # JetStream's error code for "stream name already in use"


def nats_streams(port: int, token: str) -> None:
    """JetStream's Dapr component publishes to and consumes from streams that must exist: one
    per topic, taking the topic with any prefix (a test stack's `<run id>.<topic>`). One stream
    each, because a consumer's durable name (the app id) is unique within a stream and one app
    subscribes to several topics. Made idempotently."""
    from services.common import events

    for topic in events.all_topics():
        config = {"name": f"daprml-{topic}", "subjects": [topic, f"*.{topic}"], "max_age": 0}
        config |= {"storage": "file", "max_msgs_per_subject": 10000, "duplicate_window": 120_000_000_000}
        reply = request(port, token, f"$JS.API.STREAM.CREATE.{config['name']}", json.dumps(config))
        error = reply.get("error")
        if error and error.get("err_code") != STREAM_EXISTS:  # made before: nothing to do
            raise SetupError(f"NATS did not create the stream for {topic}: {error}")


def request(port: int, token: str, subject: str, payload: str) -> dict:
    """One request to the NATS server on 127.0.0.1:port, its JSON reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        stream = s.makefile("rb")
        stream.readline()  # INFO
        connect = {"verbose": False, "pedantic": False, "auth_token": token, "headers": False}
        body = payload.encode()
        s.sendall(
            f"CONNECT {json.dumps(connect)}\r\nSUB _INBOX.daprml 1\r\n".encode()
            + f"PUB {subject} _INBOX.daprml {len(body)}\r\n".encode()
            + body
            + b"\r\nPING\r\n"
        )
        while True:
            line = stream.readline()
            if not line:
                raise SetupError("NATS closed the connection (wrong token?)")
            if line.startswith(b"-ERR"):
                raise SetupError(f"NATS refused us: {line.decode().strip()}")
            if line.startswith(b"PING"):
                s.sendall(b"PONG\r\n")
            if line.startswith(b"MSG"):
                size = int(line.split()[-1])
                return json.loads(stream.read(size + 2)[:size])

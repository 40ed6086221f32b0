"""Hot swap on promotion with two inference replicas, real sidecars: a steady stream of
requests across a promotion fails none, and every replica comes to serve the new champion
(each hears of it by the `model alias changed` event through the replica pub/sub component)."""

import threading
import time
import uuid

import httpx
import pytest

from scripts.stack import Stack
from tests.integration.conftest import poll
from tests.integration.test_training import commit, finished_job, iris_csv

pytestmark = pytest.mark.integration
ROWS = [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}]


@pytest.fixture(scope="module")
def replicated(infrastructure, tmp_path_factory):
    stack = Stack.isolated(tmp_path_factory.mktemp("replicated"), uuid.uuid4().hex[:8], replicas={"inference": 2})
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def champion_and_challenger(gateway: httpx.Client, prefix: str) -> str:
    """A new model with version 1 champion and a clearly worse version 2 challenger."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    commit(gateway, name, iris_csv())
    finished_job(gateway, name)
    weak = {"dataset": name, "estimator": "logistic_regression", "params": {"C": 1e-6}}
    assert gateway.post("/api/training/jobs", json=weak).status_code == 202
    finished_job(gateway, name, count=2)
    assert gateway.get(f"/api/models/{name}").json()["aliases"] == {"champion": 1, "challenger": 2}
    return name


def streaming_headers(gateway: httpx.Client) -> dict[str, str]:
    """A predict key for a stream through the gateway: compiled models answer one client faster
    than the admin key's 100 calls a second, so the stream holds a key with room for it."""
    reply = gateway.post(
        "/api/keys", json={"name": f"stream-{uuid.uuid4().hex[:8]}", "roles": ["predict"], "rate": 100_000}
    )
    return {"authorization": f"Bearer {reply.raise_for_status().json()['key']}"}


NO_ANSWER, UNREADABLE = "no answer", "unreadable 200"  # what a failed exchange records, for a status


class Stream:
    """Requests sent one after another until stopped, each answer kept with its time."""

    def __init__(self, url: str, name: str, headers: dict[str, str]):
        self.url, self.name, self.headers = url, name, headers
        self.answers: list[tuple[float, int | str, int | None]] = []  # time, status, version
        self.runtimes: set[str | None] = set()  # what predicted the answers
        self.unreadable: list[str] = []  # what came back when no prediction did
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=self.headers) as client:
            while not self._stop.is_set():
                self.answers.append((time.monotonic(), *self._ask(client)))

    def _ask(self, client: httpx.Client) -> tuple[int | str, int | None]:
        """The status and version of one answer; anything but a readable prediction counts as a
        failure (a 200 whose body is not one as much as a 503), never as the end of the stream."""
        try:
            reply = client.post(f"/api/models/{self.name}/predict", json={"records": ROWS})
        except httpx.HTTPError as exc:
            self.unreadable.append(f"no answer: {exc!r}")
            return NO_ANSWER, None
        if reply.status_code != 200:
            return reply.status_code, None
        try:
            body = reply.json()
            version = body["version"]
        except (ValueError, KeyError, TypeError):
            self.unreadable.append(
                f"200 with {reply.content[:200]!r} ({reply.headers.get('content-length')} bytes said)"
            )
            return UNREADABLE, None
        self.runtimes.add(body.get("runtime"))
        return 200, version

    def __enter__(self) -> "Stream":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join(30)

    def failures(self) -> list[tuple[float, int | str, int | None]]:
        return [a for a in self.answers if a[1] != 200]

    def versions(self) -> list[int | None]:
        return [a[2] for a in self.answers]

    def first_seen(self, version: int) -> float | None:
        return next((t for t, _, v in self.answers if v == version), None)


def test_a_promotion_under_load_fails_no_request_and_every_replica_swaps(replicated):
    gateway = replicated.gateway()
    name = champion_and_challenger(gateway, "swap")

    replicas = [f"http://127.0.0.1:{r.app_port}" for r in replicated.replicas("inference")]
    assert len(replicas) == 2
    # Through the gateway with the admin key; straight to each replica with the app token.
    streams = [Stream(replicated.gateway_url, name, streaming_headers(gateway))]
    streams += [Stream(url, name, replicated.app_headers()) for url in replicas]
    for stream in streams:
        stream.__enter__()
    try:
        # Every replica serves version 1 before the promotion.
        assert poll(lambda: all(s.versions() and s.versions()[-1] == 1 for s in streams), 30)
        promoted_at = time.monotonic()
        assert gateway.put(f"/api/models/{name}/aliases/champion", json={"version": 2}).status_code == 200
        assert poll(lambda: all(s.versions()[-1] == 2 for s in streams), 30), [s.versions()[-5:] for s in streams]
        time.sleep(1)  # and they go on answering with it
    finally:
        for stream in streams:
            stream.__exit__()

    for stream in streams:
        assert stream.failures() == [], stream.failures()[:5]
        assert stream.runtimes == {"onnxruntime"}, "both versions are served compiled"
    for stream in streams[1:]:
        after = stream.versions()[stream.versions().index(2) :]
        assert set(after) == {2}, "a replica went back to the old version after serving the new one"
    # Through the gateway, calls go to either replica: while one has swapped and the other not
    # yet, both versions answer. Once both have, only the new one does.
    both_swapped = max(s.first_seen(2) or 0.0 for s in streams[1:])
    late = {v for t, _, v in streams[0].answers if t > both_swapped + 0.5}
    assert late <= {2}, f"the gateway still got an old version after every replica swapped: {late}"
    swap_s = [streams[i].first_seen(2) - promoted_at for i in (1, 2)]
    total = sum(len(s.answers) for s in streams)
    print(f"\n{total} requests, 0 failed; each replica served version 2 after {swap_s[0]:.2f}s and {swap_s[1]:.2f}s")


def test_after_moves_back_and_forth_every_replica_serves_the_registrys_champion(replicated):
    """Alias events come close together and are handled concurrently, late or twice; each
    replica asks the registry, so the last answer is the registry's current champion."""
    gateway = replicated.gateway()
    name = champion_and_challenger(gateway, "back")
    urls = [f"http://127.0.0.1:{r.app_port}/api/models/{name}/predict" for r in replicated.replicas("inference")]

    def served() -> list[int]:
        answers = [
            httpx.post(url, json={"records": ROWS}, timeout=30, headers=replicated.app_headers()) for url in urls
        ]
        return [a.json()["version"] for a in answers]

    assert served() == [1, 1]
    for version in (2, 1, 2):
        assert gateway.put(f"/api/models/{name}/aliases/champion", json={"version": version}).status_code == 200
    assert poll(lambda: served() == [2, 2], 30)
    time.sleep(1)
    assert served() == [2, 2]

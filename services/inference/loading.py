"""Model versions in memory: each fetched from the registry once (its ONNX file when training's
check passed and compiling is on, else its skops file), checked against its registered sha256,
and kept in a least-recently-used cache of at most `max_loaded` versions. Loading runs in threads,
off the event loop. Each loaded version predicts through its runner: concurrent requests batched
into one predict call (batching.py) unless batching is off for it.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services.common import onnxfiles, tracing
from services.common.clients import Absent, CallError, Malformed, RegistryClient
from services.common.contracts import ModelCard, VersionInfo
from services.inference.batching import BatchingPredictor, DirectPredictor, Limits, Runner
from services.inference.domain import modelfile
from services.inference.domain.columns import Columns, count
from services.inference.domain.errors import ModelMissing, ModelUnloadable
from services.inference.metrics import InferenceMetrics
from services.inference.runtimes import (
    ONNX,
    SKLEARN,
    Choice,
    Compiling,
    OnnxRuntime,
    Result,
    Runtime,
    SklearnRuntime,
    choose,
)

log = logging.getLogger(__name__)

RETRY_LOAD_S = 30.0
"""How long a version that failed to load is refused from memory before its file is fetched again
(versions never change, but a damaged blob may be restored)."""
Key = tuple[str, int]


@dataclass(frozen=True)
class Loaded:
    """One model version in memory."""

    name: str
    version: int
    card: ModelCard
    runtime: Runtime
    runner: Runner
    reason: str | None = None  # why it is not served compiled, when it is not

    @property
    def classes(self) -> list[Any] | None:
        return self.runtime.classes


class Loader:
    def __init__(
        self,
        registry: RegistryClient,
        max_loaded: int,
        batching: Limits | None,
        unbatched: set[str],
        compiling: Compiling,
        metrics: InferenceMetrics,
        unloaded: Callable[[str, int], None],
    ):
        """`unloaded(name, version)` is told of each version let go for the cache's bound."""
        self.registry, self.max_loaded = registry, max_loaded
        self.batching, self.unbatched, self.compiling = batching, unbatched, compiling
        self.metrics, self.unloaded = metrics, unloaded
        self._models: OrderedDict[Key, Loaded] = OrderedDict()
        self._loading: dict[Key, asyncio.Future[Loaded]] = {}
        self._failed: dict[Key, tuple[float, ModelUnloadable]] = {}  # when, and why

    @property
    def loaded(self) -> list[Key]:
        """The loaded versions, least recently used first."""
        return list(self._models)

    def get(self, key: Key) -> Loaded | None:
        """The version when it is in memory (now the most recently used)."""
        found = self._models.get(key)
        if found is not None:
            self._models.move_to_end(key)
        return found

    async def load(self, info: VersionInfo) -> Loaded:
        """The version in memory: loaded once, however many ask at once; refused from memory for
        RETRY_LOAD_S after a failure."""
        key = (info.model, info.version)
        found = self._models.get(key)
        if found is not None:
            self._models.move_to_end(key)
            return found
        failed = self._failed.get(key)
        if failed is not None and time.monotonic() - failed[0] < RETRY_LOAD_S:
            raise ModelUnloadable(str(failed[1]))
        future = self._loading.get(key)
        if future is None:  # one load per version, however many requests wait for it
            future = asyncio.ensure_future(self._load(info))
            self._loading[key] = future
            future.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(future)

    def choice(self, info: VersionInfo) -> Choice:
        """The runtime a version is served with here: the loaded one's, else the one it would be."""
        loaded = self._models.get((info.model, info.version))
        if loaded is not None:
            return Choice(loaded.runtime.name, loaded.reason)
        return choose(info, self.compiling.on_for(info.model))

    async def _compiled(self, info: VersionInfo) -> Runtime:
        what = f"the ONNX file of model {info.model!r} version {info.version}"
        assert info.onnx is not None and info.onnx.artifact is not None  # as choose() found
        with from_registry():
            data = await self.registry.onnx(info.model, info.version)
        session = await asyncio.to_thread(
            onnxfiles.session, data, info.onnx.artifact.sha256, what, ModelUnloadable, self.compiling.threads
        )
        return OnnxRuntime(session, info.card)

    async def _pipeline(self, info: VersionInfo) -> Runtime:
        what = f"the artifact of model {info.model!r} version {info.version}"
        with from_registry():
            data = await self.registry.artifact(info.model, info.version)
        try:
            pipeline = await asyncio.to_thread(modelfile.load, data, info.artifact.sha256, what)
        except ModelUnloadable as e:
            self.metrics.load_failures.labels(info.model, str(info.version), SKLEARN).inc()
            log.error("refused to load %s: %s", what, e)
            self._failed[(info.model, info.version)] = (time.monotonic(), e)
            raise
        return SklearnRuntime(pipeline, info.card)

    async def _load(self, info: VersionInfo) -> Loaded:
        with tracing.span("load model", {"model": info.model, "version": str(info.version)}) as span:
            loaded = await self._load_traced(info)
            span.set_attribute("runtime", loaded.runtime.name)
            return loaded

    async def _load_traced(self, info: VersionInfo) -> Loaded:
        choice = choose(info, self.compiling.on_for(info.model))
        runtime: Runtime | None = None
        if choice.runtime == ONNX:
            try:
                runtime = await self._compiled(info)
            except (ModelUnloadable, ModelMissing) as e:  # its skops file still serves: a slower answer, not none
                self.metrics.load_failures.labels(info.model, str(info.version), ONNX).inc()
                log.error("model %s version %s: serving it with scikit-learn: %s", info.model, info.version, e)
                choice = Choice(SKLEARN, f"its ONNX file could not be served: {e}")
        if runtime is None:
            runtime = await self._pipeline(info)
        self._failed.pop((info.model, info.version), None)
        runner = self._runner(info.model, info.version, runtime)
        loaded = Loaded(info.model, info.version, info.card, runtime, runner, choice.reason)
        self._models[(info.model, info.version)] = loaded
        self.metrics.loaded.set(len(self._models))
        while len(self._models) > self.max_loaded:
            (old, version), unloaded = self._models.popitem(last=False)
            self.unloaded(old, version)  # an alias naming it is resolved again on its next request
            log.info("model %s version %s unloaded (least recently used)", old, version)
            self.metrics.loaded.set(len(self._models))
            await unloaded.runner.close()
        log.info(
            "model %s version %s loaded, served by %s%s",
            info.model,
            info.version,
            runtime.name,
            f" ({choice.reason})" if choice.reason else "",
        )
        return loaded

    def _runner(self, name: str, version: int, runtime: Runtime) -> Runner:
        inline = self.compiling.inline_rows if runtime.name == ONNX else 0

        def predict(rows: Columns, probabilities: bool) -> Result:
            started = time.perf_counter()
            result = runtime.predict(rows, probabilities)
            self.metrics.predicted(name, version, runtime.name, count(rows), time.perf_counter() - started)
            return result

        if self.batching is None or name in self.unbatched:
            return DirectPredictor(predict, inline)
        queue = self.metrics.queue.labels(name, str(version))
        limits = self.batching
        return BatchingPredictor(predict, limits.max_batch_size, limits.max_wait_s, inline, waited=queue.observe)

    async def close(self) -> None:
        """Stops the loaded versions' batching workers (at shutdown)."""
        for loaded in self._models.values():
            await loaded.runner.close()


@contextmanager
def from_registry() -> Iterator[None]:
    """What the registry's answers mean here: no such version is a missing model; any other
    refusal or failure, one that cannot be loaded. (A registry that cannot be reached stays
    SidecarUnavailable: the client waits and tries again.)"""
    try:
        yield
    except Absent as e:
        raise ModelMissing(e.detail or f"{e.what} does not exist") from None
    except Malformed as e:
        raise ModelUnloadable(f"the registry's description of {e.what} is unusable: {e.detail}") from None
    except CallError as e:
        log.error("the registry answered %s for %s: %s", e.status, e.what, e.detail)
        raise ModelUnloadable(f"{e.what} cannot be loaded: the registry answered {e.status}: {e.detail}") from None

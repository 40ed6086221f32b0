"""The data plane: protocol-neutral inference over the registry's models, as MLServer's
DataPlane is. The JSON API (api.py) and the Open Inference Protocol (v2_api.py) are thin layers
over it.

A model is named by its name and a version number or an alias (champion by default). The
registry says which version that is and what its card holds; the artifact comes from the
registry too, through service invocation, and is loaded only after its sha256 is checked
against the registered one and its contents against what ours hold. A version whose ONNX
file passed training's check is served compiled, by ONNX Runtime (runtimes.py), unless the
setting turns that off; any other, or one whose ONNX file cannot be served, by scikit-learn
from its skops file. Loaded models are kept in
a least-recently-used cache of at most `max_loaded_models`. Loading and predicting run in
threads, off the event loop. Each loaded model predicts through its runner: concurrent
requests batched into one predict call (batching.py) unless batching is off for it.

Aliases are resolved once and then served from memory: the request path asks the registry
nothing for a model it serves already. What an alias names is refreshed when the registry says
it moved (the `model alias changed` event, which every replica receives) and by a periodic
reconcile that catches any event a replica missed. A refresh loads the new version first and
then switches the alias over in one assignment: requests in flight finish on the version they
started with, and a version that cannot be loaded leaves the previous one serving.

Every call answered gets a call id here, whatever its protocol or batch, and each of its records
a prediction id made of it (services.common.contracts.monitoring): both protocols answer them,
and the prediction log captures them, so ground truth sent later names the prediction it is for.
"""

import asyncio
import logging
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common import onnxfiles, tracing
from services.common.clients import Absent, CallError, Malformed, RegistryClient
from services.common.contracts import ModelCard, VersionInfo, monitoring
from services.common.errors import ClientError
from services.common.events import ModelAliasChanged
from services.common.ports import SidecarUnavailable
from services.inference.batching import BatchingPredictor, DirectPredictor, Limits, Runner
from services.inference.domain import contract, modelfile
from services.inference.domain.columns import Columns, count
from services.inference.domain.contract import ContractWarning
from services.inference.domain.errors import InferenceError, ModelMissing, ModelUnloadable
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
from services.inference.shadows import Shadows
from services.inference.traffic import TrafficTables

log = logging.getLogger(__name__)

DEFAULT_REF = "champion"
INLINE_DECODE_ROWS = 64
"""Requests of at most this many rows are decoded and checked on the event loop (a thread hop
costs more than they do); bigger ones in a thread, so that the loop keeps answering."""
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


@dataclass(frozen=True)
class Outputs:
    model: str
    version: int
    predictions: np.ndarray
    probabilities: np.ndarray | None  # rows x classes, classifiers only and when asked for
    classes: list[Any] | None
    card: ModelCard
    rows: Columns  # what was predicted, as decoded from the request
    warnings: list[ContractWarning]  # what the model contract says of the request, bounded
    runtime: str  # onnxruntime or sklearn
    call_id: str  # this call's, made here for both protocols: each record's prediction id is made of it

    @property
    def prediction_ids(self) -> list[str]:
        """One per record, in record order: what the caller quotes to send ground truth later."""
        return monitoring.prediction_ids(self.call_id, len(self.predictions))


class DataPlane:
    def __init__(
        self,
        registry: RegistryClient,
        max_loaded_models: int,
        batching: Limits | None = None,
        unbatched: set[str] | None = None,
        compiling: Compiling | None = None,
        metrics: InferenceMetrics | None = None,
        shadows: Shadows | None = None,
    ):
        """batching: None serves every model without batching; `unbatched` names models served
        without it anyway. compiling: when and how ONNX models are served (default: always).
        shadows: where copies of the champion's requests go (None: the traffic tables' shadows
        are ignored)."""
        self.registry, self.max_loaded = registry, max_loaded_models
        self.batching, self.unbatched = batching, unbatched or set()
        self.compiling = compiling or Compiling()
        self.metrics = metrics or InferenceMetrics()
        self._models: OrderedDict[Key, Loaded] = OrderedDict()
        self._loading: dict[Key, asyncio.Future[Loaded]] = {}
        self._aliases: dict[tuple[str, str], Loaded] = {}  # (name, alias) -> the version served for it
        self._refreshing: set[tuple[str, str]] = set()
        self._stale: set[tuple[str, str]] = set()  # moved again while being refreshed
        self._moved_at: dict[tuple[str, str], float] = {}  # when each alias was last said to move
        self._failed: dict[Key, tuple[float, ModelUnloadable]] = {}  # when, and why
        self._warned: dict[Key, Counter[str]] = {}  # records warned of, by kind, since the start
        self.traffic = TrafficTables(registry, preload=lambda name, version: self.model(name, str(version)))
        self.shadows = shadows

    def warning_counts(self, name: str, version: int) -> dict[str, int]:
        """How many records this replica warned of for a model version, by kind, since it started."""
        return dict(self._warned.get((name, version), {}))

    @property
    def all_warning_counts(self) -> dict[str, dict[str, int]]:
        """warning_counts of every version warned of, keyed "name/version"."""
        return {f"{name}/{version}": dict(counts) for (name, version), counts in self._warned.items()}

    @property
    def loaded(self) -> list[Key]:
        """The loaded versions, least recently used first."""
        return list(self._models)

    # reads from the registry

    async def describe(self, name: str, ref: str | None = None) -> VersionInfo:
        """The version a number or alias names, with its card (nothing is loaded)."""
        with _from_registry():
            return await self.registry.version(name, ref or DEFAULT_REF)

    # loading

    async def model(self, name: str, ref: str | None = None) -> Loaded:
        """The loaded model a version number or alias names, loading it when it is not."""
        ref = ref or DEFAULT_REF
        if ref.isdigit():
            found = self._models.get((name, int(ref)))  # a version never changes: no need to ask
            if found is not None:
                self._models.move_to_end((name, found.version))
                return found
            return await self._loaded(await self.describe(name, ref))
        served = self._aliases.get((name, ref))
        if served is not None:
            self._models.move_to_end((name, served.version))
            return served
        asked_at = time.monotonic()
        loaded = await self._loaded(await self.describe(name, ref))
        self._aliases.setdefault((name, ref), loaded)  # a refresh that finished meanwhile wins
        if self._moved_at.get((name, ref), -math.inf) >= asked_at:
            await self.alias_moved(name, ref)  # it moved while this first answer was on its way
        return self._aliases.get((name, ref), loaded)

    @property
    def aliases(self) -> dict[tuple[str, str], int]:
        """The aliases this replica serves, and the version each names here."""
        return {key: loaded.version for key, loaded in self._aliases.items()}

    async def refresh(self, name: str, alias: str) -> None:
        """Asks the registry which version an alias names now; when it moved, loads that version
        and then switches the alias to it. An alias that no longer exists is dropped; one whose
        new version cannot be loaded keeps serving the version it had (and the failure is logged)."""
        key = (name, alias)
        try:
            info = await self.describe(name, alias)
        except ModelMissing:
            if self._aliases.pop(key, None) is not None:
                log.info("model %s alias %s no longer exists; no longer served", name, alias)
            return
        before = self._aliases.get(key)
        if before is not None and before.version == info.version:
            return
        try:
            loaded = await self._loaded(info)
        except ModelUnloadable as e:
            if before is None:
                raise
            log.warning(
                "model %s %s names version %s, which cannot be loaded; version %s keeps serving: %s",
                name,
                alias,
                info.version,
                before.version,
                e,
            )
            return
        self._aliases[key] = loaded
        if before is not None:
            self.metrics.swaps.labels(name, alias).inc()
        log.info(
            "model %s %s: now version %s%s", name, alias, loaded.version, f" (was {before.version})" if before else ""
        )

    async def alias_moved(self, name: str, alias: str) -> None:
        """The registry says an alias moved: refreshes it if this replica serves it (one
        refresh at a time per alias; a move announced during one is refreshed after it)."""
        key = (name, alias)
        self._moved_at[key] = time.monotonic()
        if key not in self._aliases:
            return  # not served here: the first request asks the registry anyway
        if key in self._refreshing:
            self._stale.add(key)
            return
        self._refreshing.add(key)
        try:
            while True:
                self._stale.discard(key)
                await self.refresh(name, alias)
                if key not in self._stale:
                    return
        finally:
            self._refreshing.discard(key)

    async def on_alias_changed(self, attributes: dict[str, Any], event: ModelAliasChanged) -> None:
        """The `model alias changed` event, which every replica receives. It only says which
        alias to ask the registry about again: events come late, twice or replayed (a new
        replica reads the topic from its start), and the registry's answer is the current one.
        A failure is logged, not retried: the next reconcile tries again."""
        try:
            await self.alias_moved(event.model, event.alias)
        except (ModelUnloadable, SidecarUnavailable) as e:
            log.warning("model %s %s moved, but refreshing it failed: %s", event.model, event.alias, e)

    async def reconcile(self) -> None:
        """Refreshes every alias and traffic table served here from the registry (for a replica
        that missed an event)."""
        await self.traffic.reconcile()
        for name, alias in list(self._aliases):
            try:
                await self.alias_moved(name, alias)
            except (ModelUnloadable, SidecarUnavailable) as e:
                log.warning("reconciling model %s %s with the registry failed: %s", name, alias, e)

    async def _loaded(self, info: VersionInfo) -> Loaded:
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
        with _from_registry():
            data = await self.registry.onnx(info.model, info.version)
        session = await asyncio.to_thread(
            onnxfiles.session, data, info.onnx.artifact.sha256, what, ModelUnloadable, self.compiling.threads
        )
        return OnnxRuntime(session, info.card)

    async def _pipeline(self, info: VersionInfo) -> Runtime:
        what = f"the artifact of model {info.model!r} version {info.version}"
        with _from_registry():
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
            # An alias naming it is resolved again on its next request.
            for key in [k for k, v in self._aliases.items() if (v.name, v.version) == (old, version)]:
                del self._aliases[key]
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

    async def ready(self, name: str, ref: str | None = None) -> Loaded:
        """Ready means loaded: loads it when it is not (raises when it cannot be)."""
        return await self.model(name, ref)

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
        """Stops the shadow copies and the loaded models' batching workers (at shutdown)."""
        if self.shadows is not None:
            await self.shadows.close()
        for loaded in self._models.values():
            await loaded.runner.close()

    # traffic: canaries and shadows (traffic.py, shadows.py)

    async def _routed(self, name: str, routing_key: str | None) -> Loaded:
        """The version a request for the champion goes to: a canary's, or the champion's (also
        when the canary cannot be loaded: the caller is served, the fallback counted)."""
        canary = await self.traffic.canary(name, routing_key)
        if canary is not None:
            try:
                return await self.model(name, str(canary))
            except (ModelUnloadable, ModelMissing) as e:
                self.metrics.canary_fallbacks.labels(name, str(canary)).inc()
                log.warning("model %s canary version %s cannot serve; the champion does: %s", name, canary, e)
        return await self.model(name, DEFAULT_REF)

    def _copy_to_shadows(
        self,
        served: Loaded,
        predictions: np.ndarray,
        inputs: Callable[[ModelCard], Columns],
        names: Callable[[ModelCard], list[ContractWarning]] | None,
        size: int | None,
    ) -> None:
        if self.shadows is None:
            return
        for version in self.traffic.shadows(served.name):
            if version == served.version:
                continue

            async def run(version: int = version) -> np.ndarray:
                out = await self.infer(served.name, str(version), inputs, probabilities=False, names=names, size=size)
                return out.predictions

            self.shadows.copy(served.name, version, predictions, served.classes is not None, run)

    # inference

    async def infer(
        self,
        name: str,
        ref: str | None,
        inputs: Callable[[ModelCard], Columns],
        probabilities: bool = True,
        names: Callable[[ModelCard], list[ContractWarning]] | None = None,
        size: int | None = None,
        routing_key: str | None = None,
    ) -> Outputs:
        """Predictions of the model for the rows `inputs` makes from its card (a protocol's
        decoder), under the model contract (domain/contract.py): `names` checks the names the
        request sends (refusing an unknown one, or warning of it), then the rows' values are
        checked; the warnings are counted per model version and answered, bounded. `size`: the
        rows the request says it holds, when known before decoding (small ones skip a thread).
        A request for the champion (no `ref`) is split by the model's traffic table: a canary
        may serve it (the same one for the same `routing_key`), and shadows get copies of it."""
        started = time.perf_counter()
        routed = ref is None
        loaded = await self._routed(name, routing_key) if routed else await self.model(name, ref)
        version = str(loaded.version)

        def decode() -> tuple[Columns, list[ContractWarning]]:
            warnings = names(loaded.card) if names is not None else []
            rows = inputs(loaded.card)
            return rows, warnings + contract.values(rows, loaded.card)

        try:
            if size is not None and size <= INLINE_DECODE_ROWS:
                rows, warnings = decode()
            else:  # a big request: its decoding and checks get a span of their own
                with tracing.span("decode and check", {"model": loaded.name, "version": version}):
                    rows, warnings = await asyncio.to_thread(decode)
            if count(rows) == 0:
                raise InferenceError("no rows to predict")
            # One span on the hot path (a recorded SDK span costs 25-30 us here), never current.
            step = tracing.start(
                "predict",
                {"model": loaded.name, "version": version, "runtime": loaded.runtime.name, "rows": count(rows)},
            )
            try:
                predictions, proba = await loaded.runner(rows, probabilities)
            finally:
                step.end()
        except Exception as e:
            refused = isinstance(e, ClientError) and e.status < 500
            self.metrics.requests.labels(loaded.name, version, "refused" if refused else "failed").inc()
            self.metrics.duration.labels(loaded.name, version).observe(time.perf_counter() - started)
            raise
        self.metrics.requests.labels(loaded.name, version, "success").inc()
        self.metrics.duration.labels(loaded.name, version).observe(time.perf_counter() - started)
        self.metrics.rows.labels(loaded.name, version).inc(count(rows))
        if warnings:
            counts = self._warned.setdefault((loaded.name, loaded.version), Counter())
            for warning in warnings:
                counts[warning.kind.value] += warning.records
        if routed:
            self._copy_to_shadows(loaded, predictions, inputs, names, size)
        return Outputs(
            loaded.name,
            loaded.version,
            predictions,
            proba,
            loaded.classes,
            loaded.card,
            rows,
            contract.bounded(warnings),
            loaded.runtime.name,
            monitoring.new_call_id(),
        )


@contextmanager
def _from_registry() -> Iterator[None]:
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

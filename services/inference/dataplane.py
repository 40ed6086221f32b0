"""The data plane: protocol-neutral inference over the registry's models, as MLServer's
DataPlane is. The JSON API (api.py) and the Open Inference Protocol (v2_api.py) are thin layers
over it.

A model is named by its name and a version number or an alias (champion by default). The
registry says which version that is and what its card holds; the version is loaded as
loading.py says (its file checked against the registered sha256, ONNX Runtime when training's
check passed, scikit-learn otherwise, a bounded cache, batching). A request for the champion
is split by the model's traffic table (traffic.py: canaries, shadows).

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from services.common import tracing
from services.common.clients import RegistryClient
from services.common.contracts import ModelCard, VersionInfo, monitoring
from services.common.errors import ClientError
from services.common.events import ModelAliasChanged
from services.common.ports import SidecarUnavailable
from services.inference.batching import Limits
from services.inference.domain import contract
from services.inference.domain.columns import Columns, count
from services.inference.domain.contract import ContractWarning
from services.inference.domain.errors import InferenceError, ModelMissing, ModelUnloadable
from services.inference.loading import Key, Loaded, Loader, from_registry
from services.inference.metrics import InferenceMetrics
from services.inference.runtimes import (
    Choice,
    Compiling,
)
from services.inference.serving_stats import ServingTally
from services.inference.shadows import Shadows
from services.inference.traffic import TrafficTables

log = logging.getLogger(__name__)

DEFAULT_REF = "champion"
INLINE_DECODE_ROWS = 64
"""Requests of at most this many rows are decoded and checked on the event loop (a thread hop
costs more than they do); bigger ones in a thread, so that the loop keeps answering."""


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
    shadow: bool = False  # a shadow's answers to a copy: `call_id` is the call whose answer the caller got

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
        serving: ServingTally | None = None,
    ):
        """batching: None serves every model without batching; `unbatched` names models served
        without it anyway. compiling: when and how ONNX models are served (default: always).
        shadows: where copies of the champion's requests go (None: the traffic tables' shadows
        are ignored). serving: where each request is counted per version for the serving stats."""
        self.registry = registry
        self.metrics = metrics or InferenceMetrics()
        self.serving = serving
        self.loader = Loader(
            registry,
            max_loaded_models,
            batching,
            unbatched or set(),
            compiling or Compiling(),
            self.metrics,
            unloaded=self._unloaded,
        )
        self._aliases: dict[tuple[str, str], Loaded] = {}  # (name, alias) -> the version served for it
        self._refreshing: set[tuple[str, str]] = set()
        self._stale: set[tuple[str, str]] = set()  # moved again while being refreshed
        self._moved_at: dict[tuple[str, str], float] = {}  # when each alias was last said to move
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
        return self.loader.loaded

    def choice(self, info: VersionInfo) -> Choice:
        """The runtime a version is served with here: the loaded one's, else the one it would be."""
        return self.loader.choice(info)

    def _unloaded(self, name: str, version: int) -> None:
        """A version let go for the cache's bound: an alias naming it is resolved again on its next request."""
        for key in [k for k, v in self._aliases.items() if (v.name, v.version) == (name, version)]:
            del self._aliases[key]

    # reads from the registry

    async def describe(self, name: str, ref: str | None = None) -> VersionInfo:
        """The version a number or alias names, with its card (nothing is loaded)."""
        with from_registry():
            return await self.registry.version(name, ref or DEFAULT_REF)

    # loading

    async def model(self, name: str, ref: str | None = None) -> Loaded:
        """The loaded model a version number or alias names, loading it when it is not."""
        ref = ref or DEFAULT_REF
        if ref.isdigit():
            found = self.loader.get((name, int(ref)))  # a version never changes: no need to ask
            if found is not None:
                return found
            return await self.loader.load(await self.describe(name, ref))
        served = self._aliases.get((name, ref))
        if served is not None:
            self.loader.get((name, served.version))  # now the most recently used
            return served
        asked_at = time.monotonic()
        loaded = await self.loader.load(await self.describe(name, ref))
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
            loaded = await self.loader.load(info)
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

    async def ready(self, name: str, ref: str | None = None) -> Loaded:
        """Ready means loaded: loads it when it is not (raises when it cannot be)."""
        return await self.model(name, ref)

    async def close(self) -> None:
        """Stops the shadow copies and the loaded models' batching workers (at shutdown)."""
        if self.shadows is not None:
            await self.shadows.close()
        await self.loader.close()

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
                if self.serving is not None:  # the canary failed its share (a rollout's error rate sees it)
                    self.serving.request(name, canary, "failed", 0.0)
                log.warning("model %s canary version %s cannot serve; the champion does: %s", name, canary, e)
        return await self.model(name, DEFAULT_REF)

    def _copy_to_shadows(
        self,
        served: Outputs,
        inputs: Callable[[ModelCard], Columns],
        names: Callable[[ModelCard], list[ContractWarning]] | None,
        size: int | None,
    ) -> None:
        """Each shadow the table draws for this request answers a copy of it, in the background;
        its answers carry the served call's id (their prediction ids are the caller's)."""
        if self.shadows is None:
            return
        for version in self.traffic.shadows(served.model):
            if version == served.version:
                continue

            async def run(version: int = version) -> Outputs:
                out = await self.infer(
                    served.model, str(version), inputs, probabilities=True, names=names, size=size, shadow=True
                )
                return replace(out, call_id=served.call_id, shadow=True)

            self.shadows.copy(served.model, version, served.predictions, served.classes is not None, run)

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
        shadow: bool = False,
    ) -> Outputs:
        """Predictions of the model for the rows `inputs` makes from its card (a protocol's
        decoder), under the model contract (domain/contract.py): `names` checks the names the
        request sends (refusing an unknown one, or warning of it), then the rows' values are
        checked; the warnings are counted per model version and answered, bounded. `size`: the
        rows the request says it holds, when known before decoding (small ones skip a thread).
        A request for the champion (no `ref`) is split by the model's traffic table: a canary
        may serve it (the same one for the same `routing_key`), and shadows get copies of it.
        `shadow`: a shadow's copy (the shadows count it in the serving stats, not as a request)."""
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
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(loaded.name, version, "refused" if refused else "failed").inc()
            self.metrics.duration.labels(loaded.name, version).observe(seconds)
            if self.serving is not None and not shadow:
                self.serving.request(loaded.name, loaded.version, "refused" if refused else "failed", seconds)
            raise
        seconds = time.perf_counter() - started
        self.metrics.requests.labels(loaded.name, version, "success").inc()
        self.metrics.duration.labels(loaded.name, version).observe(seconds)
        if self.serving is not None and not shadow:
            self.serving.request(loaded.name, loaded.version, "answered", seconds)
        self.metrics.rows.labels(loaded.name, version).inc(count(rows))
        if warnings:
            counts = self._warned.setdefault((loaded.name, loaded.version), Counter())
            for warning in warnings:
                counts[warning.kind.value] += warning.records
        out = Outputs(
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
        if routed:
            self._copy_to_shadows(out, inputs, names, size)
        return out

"""How a model's shadow versions answer against the versions that served the callers: each
shadow's captured answers (the shadows table, by model and version) joined by prediction id
with the answers the callers got (the inference table), over a window.
"""

import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from services.common.contracts.monitoring import CapturedPrediction, ShadowAgreement  # shared: the rollouts read it
from services.monitor.domain.rows import shadow_key, shadow_prefix, utc
from services.monitor.tables import InferenceTables
from services.monitor.window import newest_rows

SLACK = timedelta(minutes=5)
"""How much earlier than a shadow's answer the answer served may have been captured (a copy runs
after the answer is made; both are published by the same replica within seconds)."""
SERVED_ROWS = 100_000
"""Served rows one report reads at most to find the shadows' counterparts."""


async def agreement(
    tables: InferenceTables, model: str, since: datetime | None, until: datetime, max_rows: int, max_parts: int
) -> list[ShadowAgreement]:
    """Each shadow version of the model with answers from `since` to `until` (the newest
    `max_rows` of each), joined with the served answers."""
    prefix = shadow_prefix(model)
    versions = sorted(int(k[len(prefix) :]) for k in await tables.shadows.models() if k.startswith(prefix))
    reports = []
    for version in versions:
        window = await newest_rows(tables.shadows, shadow_key(model, version), since, until, max_rows, max_parts)
        if not window.rows:
            continue
        served = await newest_rows(tables.table, model, utc(window.rows[0].at) - SLACK, until, SERVED_ROWS, max_parts)
        reports.append(_joined(version, window.rows, {r.prediction_id: r for r in served.rows}))
    return reports


class Agreements:
    """The shadows' agreement of each model, made again when `cache_s` old: GET .../monitoring,
    which answers it, is polled by consoles, and a report reads the shadows' window and the
    served rows of that window. At most `max_models` models are kept (the least recently asked
    is let go)."""

    def __init__(
        self,
        tables: InferenceTables,
        max_parts: int,
        cache_s: float,
        clock: Callable[[], datetime],
        max_models: int = 100,
    ):
        self.tables, self.max_parts, self.cache_s, self.clock = tables, max_parts, cache_s, clock
        self.max_models = max_models
        self._kept: OrderedDict[tuple[str, float | None, int], tuple[datetime, list[ShadowAgreement]]] = OrderedDict()

    async def of(self, model: str, window_hours: float | None, max_rows: int) -> list[ShadowAgreement]:
        """The model's shadows over the window ending now (a report at most `cache_s` old)."""
        key, now = (model, window_hours, max_rows), self.clock()
        kept = self._kept.get(key)
        if kept is not None and (now - kept[0]).total_seconds() < self.cache_s:
            self._kept.move_to_end(key)
            return kept[1]
        since = now - timedelta(hours=window_hours) if window_hours is not None else None
        reports = await agreement(self.tables, model, since, now, max_rows, self.max_parts)
        self._kept[key] = (now, reports)
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_models:
            self._kept.popitem(last=False)
        return reports


def _joined(version: int, shadow: list[CapturedPrediction], served: dict[str, CapturedPrediction]) -> ShadowAgreement:
    pairs = [(row.output, served[row.prediction_id]) for row in shadow if row.prediction_id in served]
    same = sum(1 for output, answer in pairs if str(output) == str(answer.output))
    numeric = [
        abs(float(output) - float(answer.output))
        for output, answer in pairs
        if _number(output) and _number(answer.output)
    ]
    return ShadowAgreement(
        version=version,
        answers=len(shadow),
        pairs=len(pairs),
        agreement=same / len(pairs) if pairs else None,
        mean_abs_difference=sum(numeric) / len(numeric) if numeric else None,
        served_by={str(v): n for v, n in sorted(Counter(answer.version for _, answer in pairs).items())},
    )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""The model contract: what a request may send a model, checked the same way for both protocols
(the data plane calls these; the endpoints only translate HTTP).

- A name the model does not know (a record's field, an input tensor's name) is refused with
  a 422 naming it and the nearest known name, unless the request says `strict: false`: then
  it is ignored and listed in the warnings. The model's target is accepted quietly (clients
  send whole rows).
- A missing feature is allowed (the pipeline imputes it as in training) and warned of; so is
  a category training never saw and a number far outside the range training saw (`far`).
  Cards registered before the signature recorded categories and ranges warn of neither.

Warnings are bounded: one per field and kind, with the number of records it concerns, and at
most MAX_WARNINGS of them in all.
"""

import difflib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel

from services.common.contracts import NUMERIC, ColumnType, Feature, ModelCard
from services.inference.domain.columns import Columns, count, missing
from services.inference.domain.errors import UnknownField

MAX_WARNINGS = 50
"""At most this many warnings in one answer, whatever the request (the last says how many more)."""


class Kind(StrEnum):
    UNKNOWN_FIELD = "unknown_field"
    MISSING = "missing"
    UNSEEN_CATEGORY = "unseen_category"
    OUT_OF_RANGE = "out_of_range"
    MORE = "more"


class ContractWarning(BaseModel):
    """Something the model was sent that it did not expect, and how many records it concerns."""

    kind: Kind
    field: str | None = None
    records: int
    message: str


def far(value: Any, low: float, high: float) -> Any:
    """A number far outside the range training saw: beyond it by more than the range's width
    (for a range of a single value, any other value). For a number, or a whole column at once."""
    width = high - low
    return (value < low - width) | (value > high + width)


def nearest(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None


def _refusal(name: str, what: str, card: ModelCard, record: int | None = None) -> UnknownField:
    features = [f.name for f in card.features]
    guess = nearest(name, features)
    hint = f"did you mean {guess!r}?" if guess else f"the model's features are {features}"
    where = f"record {record}: " if record is not None else ""
    return UnknownField(
        f'{where}unknown {what} {name!r}: {hint} (send "strict": false to ignore names the model does not know)',
        field=name,
        nearest=guess,
        record=record,  # None for an input tensor
    )


def _unknown(counts: Mapping[str, int], what: str) -> list[ContractWarning]:
    return [
        ContractWarning(
            kind=Kind.UNKNOWN_FIELD, field=name, records=n, message=f"unknown {what} {name!r} ignored in {n} records"
        )
        for name, n in counts.items()
    ]


def record_fields(records: Sequence[Mapping[str, Any]], card: ModelCard, strict: bool) -> list[ContractWarning]:
    """Checks the fields of JSON records against the card: raises UnknownField for the first
    name it does not know when strict; otherwise warns of each, once."""
    known = {f.name for f in card.features} | {card.target}
    counts: Counter[str] = Counter()
    for index, record in enumerate(records):
        if record.keys() <= known:
            continue
        for name in record:
            if name not in known:
                if strict:
                    raise _refusal(name, "field", card, index)
                counts[name] += 1
    return _unknown(counts, "field")


def input_names(names: Sequence[str], card: ModelCard, strict: bool) -> list[ContractWarning]:
    """Checks the names of OIP input tensors against the card, as record_fields does fields."""
    known = {f.name for f in card.features} | {card.target}
    unknown = [n for n in names if n not in known]
    if unknown and strict:
        raise _refusal(unknown[0], "input", card)
    return _unknown(Counter(unknown), "input")


def _flagged(column: np.ndarray, feature: Feature) -> list[tuple[Kind, np.ndarray]]:
    """Which of a feature's values the contract warns of, by kind: one flag per value. The one
    rule both `values` (the answer's counts) and `record_warnings` (the capture's) follow."""
    numeric = column.dtype.kind == "f"
    flags = [(Kind.MISSING, missing(column))]
    if feature.type == ColumnType.CATEGORY and feature.categories is not None and not numeric:
        known = set(feature.categories)
        unseen = np.fromiter((isinstance(v, str) and v not in known for v in column), bool, len(column))
        flags.append((Kind.UNSEEN_CATEGORY, unseen))
    if feature.type in NUMERIC and feature.min is not None and feature.max is not None and numeric:
        flags.append((Kind.OUT_OF_RANGE, far(column, feature.min, feature.max)))  # NaN compares false
    return flags


def values(rows: Columns, card: ModelCard) -> list[ContractWarning]:
    """Warnings of the values the model reads (rows as the decoders make them): missing
    features, categories not seen in training, numbers far outside training's range."""
    out = []
    for feature in card.features:
        if feature.name not in rows:
            continue
        column, name = rows[feature.name], feature.name
        for kind, flags in _flagged(column, feature):
            n = int(np.count_nonzero(flags))
            if not n:
                continue
            if kind == Kind.MISSING:
                message = f"{name!r} missing in {n} records: imputed as in training"
            elif kind == Kind.UNSEEN_CATEGORY:
                examples = sorted(set(column[flags][:100].tolist()))[:3]
                message = (
                    f"{name!r} has categories not seen in training in {n} records "
                    f"(such as {examples}); they count as none of the known ones"
                )
            else:
                low, high = feature.min, feature.max
                message = (
                    f"{name!r} is far outside the range seen in training [{low:g}, {high:g}] "
                    f"in {n} records (such as {float(column[flags][0]):g})"
                )
            out.append(ContractWarning(kind=kind, field=name, records=n, message=message))
    return out


def record_warnings(rows: Columns, card: ModelCard, limit: int) -> list[list[str]]:
    """What `values` warns of, record by record, for the first `limit` rows: "kind:field" each
    (e.g. "missing:width"), in the card's order. Fields the model ignored are not among them:
    they never reached it."""
    n = min(limit, count(rows))
    out: list[list[str]] = [[] for _ in range(n)]
    for feature in card.features:
        if feature.name not in rows:
            continue
        for kind, flags in _flagged(rows[feature.name][:n], feature):
            for index in np.flatnonzero(flags).tolist():
                out[index].append(f"{kind.value}:{feature.name}")
    return out


def bounded(warnings: list[ContractWarning]) -> list[ContractWarning]:
    """At most MAX_WARNINGS, the last saying how many more there were."""
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    rest = warnings[MAX_WARNINGS - 1 :]
    more = ContractWarning(
        kind=Kind.MORE,
        records=sum(w.records for w in rest),
        message=f"{len(rest)} more warnings not listed",
    )
    return [*warnings[: MAX_WARNINGS - 1], more]

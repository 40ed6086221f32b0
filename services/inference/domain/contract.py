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

from pydantic import BaseModel

from services.common.contracts import NUMERIC, ColumnType, ModelCard
from services.inference.domain.columns import Columns, missing
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


def values(rows: Columns, card: ModelCard) -> list[ContractWarning]:
    """Warnings of the values the model reads (rows as the decoders make them): missing
    features, categories not seen in training, numbers far outside training's range."""
    out = []
    for feature in card.features:
        if feature.name not in rows:
            continue
        column = rows[feature.name]
        numeric = column.dtype.kind == "f"
        absent = int(missing(column).sum())
        if absent:
            out.append(
                ContractWarning(
                    kind=Kind.MISSING,
                    field=feature.name,
                    records=absent,
                    message=f"{feature.name!r} missing in {absent} records: imputed as in training",
                )
            )
        if feature.type == ColumnType.CATEGORY and feature.categories is not None and not numeric:
            known = set(feature.categories)
            unseen = [v for v in column if isinstance(v, str) and v not in known]
            if unseen:
                examples = sorted(set(unseen[:100]))[:3]
                out.append(
                    ContractWarning(
                        kind=Kind.UNSEEN_CATEGORY,
                        field=feature.name,
                        records=len(unseen),
                        message=f"{feature.name!r} has categories not seen in training in {len(unseen)} records "
                        f"(such as {examples}); they count as none of the known ones",
                    )
                )
        if feature.type in NUMERIC and feature.min is not None and feature.max is not None and numeric:
            low, high = feature.min, feature.max
            outside = column[far(column, low, high)]  # NaN compares false: a missing value is not far
            if len(outside):
                out.append(
                    ContractWarning(
                        kind=Kind.OUT_OF_RANGE,
                        field=feature.name,
                        records=len(outside),
                        message=f"{feature.name!r} is far outside the range seen in training [{low:g}, {high:g}] "
                        f"in {len(outside)} records (such as {float(outside[0]):g})",
                    )
                )
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

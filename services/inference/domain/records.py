"""Records (JSON objects, one per row) as the columns a model reads (columns.py): each value
coerced by the rules training's frames follow, with the record named in each refusal.

A feature a record leaves out, or gives as null, is missing (the model imputes it); fields
that are not features (the target, say) are ignored here (the model contract has checked them).
"""

from collections.abc import Mapping, Sequence
from typing import Any

from services.common.contracts import Feature
from services.inference.domain.columns import Columns, Refused, column
from services.inference.domain.errors import BadRecord


def columns(records: Sequence[Mapping[str, Any]], features: Sequence[Feature]) -> Columns:
    out = {}
    for feature in features:
        try:
            out[feature.name] = column([record.get(feature.name) for record in records], feature)
        except Refused as e:
            raise BadRecord(
                f"record {e.index}, field {feature.name!r}: {e}", record=e.index, field=feature.name
            ) from None
    return out

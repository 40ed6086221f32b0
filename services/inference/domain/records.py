"""Records (JSON objects, one per row) as the frame a model reads: each value coerced by the
rules training's frames follow (services/common/contracts/coercion.py: numbers as floats,
booleans as 0/1, categories as strings, a missing value as NaN), with the record named in each
refusal.

A feature a record leaves out, or gives as null, is missing (the pipeline imputes it); fields
that are not features (the target, say) are ignored.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from services.common.contracts import Feature
from services.common.contracts.coercion import WrongType, coerce, dtype
from services.inference.domain.errors import BadRecord


def frame(records: Sequence[Mapping[str, Any]], features: Sequence[Feature]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {f.name: [] for f in features}
    for index, record in enumerate(records):
        for feature in features:
            try:
                columns[feature.name].append(coerce(record.get(feature.name), feature.type))
            except WrongType as e:
                raise BadRecord(
                    f"record {index}, field {feature.name!r}: {e}", record=index, field=feature.name
                ) from None
    return pd.DataFrame(
        {f.name: pd.Series(columns[f.name], dtype=dtype(f.type)) for f in features}, index=range(len(records))
    )

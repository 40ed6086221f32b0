"""The model contract (services/inference/domain/contract.py): names refused or warned of, and
warnings of missing features, unseen categories and numbers far outside training's range."""

import pandas as pd
import pytest

from services.common.contracts import ModelCard
from services.inference.domain import contract, records
from services.inference.domain.contract import MAX_WARNINGS, Kind
from services.inference.domain.errors import UnknownField

FEATURES = [
    {"name": "length", "type": "number", "min": 1.0, "max": 7.0},
    {"name": "rooms", "type": "integer", "min": 1.0, "max": 5.0},
    {"name": "colour", "type": "category", "categories": ["blue", "red", "white"]},
    {"name": "wild", "type": "boolean"},
]
SIGNED = ModelCard.model_validate(
    {"task": "classification", "target": "species", "features": FEATURES, "classes": ["a", "b"]}
)
OLD = ModelCard.model_validate(
    {
        "task": "classification",
        "target": "species",
        "features": [{"name": f["name"], "type": f["type"]} for f in FEATURES],
        "classes": ["a", "b"],
    }
)


def kinds(warnings):
    return {(w.kind, w.field): w.records for w in warnings}


def test_an_unknown_field_is_refused_naming_it_and_the_nearest_known_name():
    with pytest.raises(UnknownField) as caught:
        contract.record_fields([{"length": 1}, {"lenght": 2, "rooms": 1}], SIGNED, strict=True)
    e = caught.value
    assert e.status == 422
    assert e.details == {"field": "lenght", "nearest": "length", "record": 1}
    assert "record 1: unknown field 'lenght': did you mean 'length'?" in str(e)
    with pytest.raises(UnknownField) as far_off:
        contract.record_fields([{"zzz": 1}], SIGNED, strict=True)
    assert far_off.value.details["nearest"] is None and "the model's features are" in str(far_off.value)


def test_the_target_is_accepted_quietly():
    assert contract.record_fields([{"length": 1, "species": "a"}], SIGNED, strict=True) == []
    assert contract.input_names(["length", "species"], SIGNED, strict=True) == []


def test_not_strict_unknown_names_are_warned_of_once_each_with_a_record_count():
    rows = [{"length": 1, "lenght": 2, "id": i} for i in range(10_000)]
    warnings = contract.record_fields(rows, SIGNED, strict=False)
    assert kinds(warnings) == {(Kind.UNKNOWN_FIELD, "lenght"): 10_000, (Kind.UNKNOWN_FIELD, "id"): 10_000}


def test_an_unknown_input_name_is_refused_or_warned_of():
    with pytest.raises(UnknownField) as caught:
        contract.input_names(["length", "colur"], SIGNED, strict=True)
    assert "unknown input 'colur': did you mean 'colour'?" in str(caught.value)
    assert kinds(contract.input_names(["length", "colur"], SIGNED, strict=False)) == {(Kind.UNKNOWN_FIELD, "colur"): 1}


def test_missing_features_unseen_categories_and_far_numbers_are_warned_of_per_field_and_kind():
    rows = records.columns(
        [
            {"length": 2.0, "rooms": 2, "colour": "red", "wild": True},
            {"length": 20.0, "rooms": 12, "colour": "green"},  # 20 > 7 + 6; 12 > 5 + 4; green unseen
            {"length": 12.9, "rooms": 9, "colour": "green"},  # within one width of the range
            {"colour": "purple"},
        ],
        SIGNED.features,
    )
    assert kinds(contract.values(rows, SIGNED)) == {
        (Kind.MISSING, "length"): 1,
        (Kind.MISSING, "rooms"): 1,
        (Kind.MISSING, "wild"): 3,
        (Kind.UNSEEN_CATEGORY, "colour"): 3,
        (Kind.OUT_OF_RANGE, "length"): 1,
        (Kind.OUT_OF_RANGE, "rooms"): 1,
    }


def test_an_old_card_warns_of_missing_features_only():
    rows = records.columns([{"length": 1e9, "colour": "purple"}], OLD.features)
    assert kinds(contract.values(rows, OLD)) == {(Kind.MISSING, "rooms"): 1, (Kind.MISSING, "wild"): 1}


def test_far_means_beyond_the_range_by_more_than_its_width():
    assert not contract.far(13.0, 1.0, 7.0) and contract.far(13.1, 1.0, 7.0)
    assert not contract.far(-5.0, 1.0, 7.0) and contract.far(-5.1, 1.0, 7.0)
    assert contract.far(3.5, 3.0, 3.0) and not contract.far(3.0, 3.0, 3.0)  # one value seen: any other
    assert contract.far(pd.Series([0.0, 100.0]), 0.0, 1.0).tolist() == [False, True]


def test_warnings_are_bounded():
    many = contract.record_fields([{f"x{i}": 1 for i in range(500)}], SIGNED, strict=False)
    bounded = contract.bounded(many)
    assert len(bounded) == MAX_WARNINGS and bounded[-1].kind == Kind.MORE
    assert f"{500 - MAX_WARNINGS + 1} more warnings" in bounded[-1].message

import json

import pytest

from services.common.contracts import Task
from services.training.domain import estimators
from services.training.domain.errors import InvalidParams, UnknownEstimator


def test_each_task_offers_the_named_estimators():
    names = {task: [e["name"] for e in found] for task, found in estimators.describe().items()}
    assert names == {
        "classification": ["logistic_regression", "random_forest", "gradient_boosting", "linear_svm"],
        "regression": ["ridge", "random_forest", "gradient_boosting"],
    }


def test_describe_gives_each_parameter_its_type_default_and_bounds():
    assert json.loads(json.dumps(estimators.describe())) == estimators.describe()  # JSON-ready
    described = {e["name"]: e for e in estimators.describe()["classification"]}
    params = {p["name"]: p for p in described["random_forest"]["params"]}
    assert params["n_estimators"] | {"description": ""} == {
        "name": "n_estimators",
        "type": "integer",
        "default": 100,
        "nullable": False,
        "choices": None,
        "minimum": 1,
        "exclusive_minimum": None,
        "maximum": 2000,
        "description": "",
    }
    assert params["max_depth"]["nullable"] and params["max_depth"]["default"] is None
    assert params["class_weight"]["choices"] == ["balanced", "balanced_subsample"]
    assert {p["name"]: p["exclusive_minimum"] for p in described["logistic_regression"]["params"]}["C"] == 0


def test_validate_fills_the_defaults():
    assert estimators.validate("regression", "ridge", {}) == {"alpha": 1.0}
    assert estimators.validate(Task.CLASSIFICATION, "random_forest", {"n_estimators": 5}) == {
        "n_estimators": 5,
        "max_depth": None,
        "min_samples_leaf": 1,
        "class_weight": None,
    }


def test_a_default_spelled_out_validates_to_the_same_params():
    assert estimators.validate("regression", "ridge", {"alpha": 1.0}) == estimators.validate(
        "regression", "ridge", None
    )


def test_unknown_estimator_names_those_available_for_the_task():
    with pytest.raises(UnknownEstimator, match=r"'linear_svm' for regression; choose one of") as caught:
        estimators.validate("regression", "linear_svm", {})
    assert caught.value.status == 422
    assert caught.value.details["available"] == ["gradient_boosting", "random_forest", "ridge"]


def test_a_parameter_the_estimator_does_not_take_names_those_it_takes():
    with pytest.raises(InvalidParams, match=r"'ridge' takes no parameter max_iter; it takes \['alpha'\]") as caught:
        estimators.validate("regression", "ridge", {"max_iter": 3})
    assert caught.value.status == 422


def test_the_seed_is_not_a_parameter():
    with pytest.raises(InvalidParams, match="random_state is set from the job's seed"):
        estimators.validate("classification", "random_forest", {"random_state": 1})


@pytest.mark.parametrize(
    ("estimator", "params", "problem"),
    [
        ("random_forest", {"n_estimators": 0}, "n_estimators should be greater than or equal to 1, got 0"),
        ("random_forest", {"n_estimators": 10.0}, "n_estimators should be a valid integer, got 10.0"),
        ("random_forest", {"n_estimators": "10"}, "n_estimators should be a valid integer, got '10'"),
        ("random_forest", {"max_depth": True}, "max_depth should be a valid integer, got True"),
        ("logistic_regression", {"C": 0}, "C should be greater than 0, got 0"),
        ("logistic_regression", {"C": float("inf")}, "C should be a finite number, got inf"),
        ("linear_svm", {"class_weight": "even"}, "class_weight should be 'balanced', got 'even'"),
    ],
)
def test_a_value_of_the_wrong_type_or_out_of_range_is_named(estimator, params, problem):
    with pytest.raises(InvalidParams, match=f"'{estimator}': ") as caught:
        estimators.validate("classification", estimator, params)
    assert caught.value.details["problems"] == [problem]


def test_every_problem_is_named_at_once():
    with pytest.raises(InvalidParams) as caught:
        estimators.validate("regression", "gradient_boosting", {"learning_rate": -1.0, "max_iter": 0})
    assert len(caught.value.details["problems"]) == 2


def test_an_integer_is_a_valid_number():
    assert estimators.validate("regression", "ridge", {"alpha": 2})["alpha"] == 2


def test_default_estimator_per_task_is_on_the_allow_list():
    for task in Task:
        estimators.validate(task, estimators.default_for(task), {})


def test_every_allow_listed_parameter_is_one_the_scikit_learn_estimator_takes():
    for task, by_name in estimators.ESTIMATORS.items():
        for spec in by_name.values():
            built = spec.build(estimators.validate(task, spec.name, {}), seed=7)
            takes = built.get_params()
            for name in spec.params.model_fields:
                assert name in takes or f"estimator__{name}" in takes, (spec.name, name)
            seeds = {k: v for k, v in takes.items() if k.endswith("random_state")}
            assert seeds and set(seeds.values()) == {7}, (spec.name, seeds)
            built._validate_params()  # scikit-learn's own check of the values


SHRINKING = {"min_samples_leaf"}  # a larger value makes a smaller model: no upper bound needed
BIG = {"max_trees": 10**41, "max_depth": 10**41, "max_iterations": 10**41}


def test_every_integer_parameter_that_sizes_a_model_has_an_upper_bound():
    for task, found in estimators.describe().items():
        for estimator in found:
            for param in estimator["params"]:
                if param["type"] == "integer" and param["name"] not in SHRINKING:
                    assert param["maximum"] is not None, (task, estimator["name"], param["name"])


@pytest.mark.parametrize(
    ("estimator", "params", "words"),
    [
        ("random_forest", {"n_estimators": 2001}, "n_estimators should be at most 2000 (the bound DAPRML_MAX_TREES)"),
        ("random_forest", {"max_depth": 65}, "max_depth should be at most 64 (the bound DAPRML_MAX_DEPTH)"),
        ("gradient_boosting", {"max_iter": 10**40}, "max_iter should be at most 100000"),
    ],
)
def test_a_value_over_its_bound_is_refused_naming_the_bound(estimator, params, words):
    with pytest.raises(InvalidParams, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
        estimators.validate("classification", estimator, params)
    assert caught.value.status == 422
    assert estimators.validate("classification", estimator, params, estimators.Bounds(**BIG))  # bounds are settings


def test_a_forests_null_depth_is_built_as_the_depth_bound_and_boostings_stays_bounded_by_its_leaves():
    bounds = estimators.Bounds(max_depth=7)
    forest = estimators.lookup("regression", "random_forest").build({"max_depth": None}, 0, bounds)
    assert forest.max_depth == 7
    boosting = estimators.lookup("regression", "gradient_boosting").build({"max_depth": None}, 0, bounds)
    assert boosting.max_depth is None and boosting.max_leaf_nodes == 31

"""The estimators a job may ask for, by name, with the parameters each takes.

An allow-list rather than any scikit-learn class: every name here is one the pipeline, the
artifact's type check and the model card know how to handle. Each estimator exposes a curated
set of parameters, validated with pydantic before any job starts (no data needed), in strict
mode so that 10.0 is not silently an integer and "1" not a number.

Every parameter that sizes a model (trees, depth, iterations) has an upper bound (`Bounds`,
set by the training service's settings), so that no request can make a fit run for days or
grow without end; a forest's max_depth, whose null means "until the leaves are pure", is then
held to the depth bound too.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.svm import LinearSVC

from services.common.contracts import Task
from services.training.domain.errors import InvalidParams, UnknownEstimator

SEEDED = "random_state"  # set from the job's seed, never a parameter: lineage records the seed once


class Bounds(BaseModel):
    """Upper bounds of the parameters that size a model (the training service's settings)."""

    max_trees: int = Field(2000, ge=1, description="trees of a forest (n_estimators)")
    max_depth: int = Field(64, ge=1, description="levels of a tree (max_depth)")
    max_iterations: int = Field(100_000, ge=1, description="iterations of a solver or booster (max_iter)")


# The setting behind each bound, named in the answer that refuses a value above it.
BOUND_SETTINGS = {name: f"DAPRML_{name.upper()}" for name in Bounds.model_fields}


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    BOUNDED: ClassVar[dict[str, str]] = {}
    """parameter -> the field of Bounds that bounds it from above"""
    NULL_IS_BOUND: ClassVar[frozenset[str]] = frozenset()
    """parameters whose null would mean "no bound": built with their bound instead"""


Depth = Annotated[int, Field(ge=1)]
Balance = Literal["balanced"] | None
BALANCE = "'balanced' weighs classes inversely to their frequency; null weighs every row alike"


class LogisticRegressionParams(Params):
    BOUNDED = {"max_iter": "max_iterations"}
    C: float = Field(1.0, gt=0, description="inverse regularization strength: smaller is stronger")
    # scikit-learn's 100 often stops short of convergence on a few thousand rows.
    max_iter: int = Field(1000, ge=1, description="iterations of the solver at most")
    class_weight: Balance = Field(None, description=BALANCE)


class LinearSvmParams(Params):
    BOUNDED = {"max_iter": "max_iterations"}
    C: float = Field(1.0, gt=0, description="inverse regularization strength: smaller is stronger")
    max_iter: int = Field(1000, ge=1, description="iterations of the solver at most")
    class_weight: Balance = Field(None, description=BALANCE)


class ForestParams(Params):
    BOUNDED = {"n_estimators": "max_trees", "max_depth": "max_depth"}
    NULL_IS_BOUND = frozenset({"max_depth"})
    n_estimators: int = Field(100, ge=1, description="trees in the forest")
    max_depth: Depth | None = Field(
        None, description="levels per tree at most; null grows until the leaves are pure, up to the depth bound"
    )
    min_samples_leaf: int = Field(1, ge=1, description="rows a leaf holds at least")


class ForestClassifierParams(ForestParams):
    class_weight: Literal["balanced", "balanced_subsample"] | None = Field(None, description=BALANCE)


class BoostingParams(Params):
    # A null max_depth is bounded already: scikit-learn's max_leaf_nodes (31) limits each tree.
    BOUNDED = {"max_iter": "max_iterations", "max_depth": "max_depth"}
    learning_rate: float = Field(0.1, gt=0, description="shrinkage of each tree's contribution")
    max_iter: int = Field(100, ge=1, description="boosting iterations (trees per class) at most")
    max_depth: Depth | None = Field(None, description="levels per tree at most; null bounds trees by max_leaf_nodes")
    min_samples_leaf: int = Field(20, ge=1, description="rows a leaf holds at least")
    l2_regularization: float = Field(0.0, ge=0, description="L2 penalty on leaf values")


class BoostingClassifierParams(BoostingParams):
    class_weight: Balance = Field(None, description=BALANCE)


class RidgeParams(Params):
    alpha: float = Field(1.0, ge=0, description="L2 regularization strength: larger is stronger")


def _linear_svm(**params: Any) -> CalibratedClassifierCV:
    # LinearSVC has no predict_proba; without probabilities there is no ROC AUC or log loss and
    # no way to rank its answers. Sigmoid calibration over cross-validation folds gives them.
    # The folds are fitted to the data at fit time (pipeline.fit), as few classes may be small.
    return CalibratedClassifierCV(LinearSVC(**params), method="sigmoid")


@dataclass(frozen=True)
class Estimator:
    name: str
    task: Task
    params: type[Params]
    make: Callable[..., Any]  # takes the params as keywords, returns an unfitted estimator
    description: str
    scaled: bool = True
    """Whether its numbers are standardized first. Linear models need it; trees split on
    thresholds and do not, and a scaler before them costs exactness once compiled: the ONNX
    model scales in float32, which moves values near a threshold to its other side."""
    reads_missing: bool = False
    """Whether it takes missing numbers (NaN) itself, learning where they go, rather than
    imputed ones. Histogram gradient boosting does; an imputed median would also sit on one of
    its thresholds (both are midpoints of the same values), where float32 and float64 part."""

    def build(self, params: Mapping[str, Any], seed: int, bounds: Bounds | None = None) -> Any:
        values = self.params.model_validate(params).model_dump()
        for name in self.params.NULL_IS_BOUND:
            if values[name] is None:
                values[name] = getattr(bounds or Bounds(), self.params.BOUNDED[name])
        estimator = self.make(**values)
        # Also reaches a wrapped estimator's seed (estimator__random_state).
        seeded = {k: seed for k in estimator.get_params() if k == SEEDED or k.endswith(f"__{SEEDED}")}
        return estimator.set_params(**seeded)


ESTIMATORS: dict[Task, dict[str, Estimator]] = {
    Task.CLASSIFICATION: {
        e.name: e
        for e in (
            Estimator(
                "logistic_regression",
                Task.CLASSIFICATION,
                LogisticRegressionParams,
                LogisticRegression,
                "multinomial logistic regression (lbfgs)",
            ),
            Estimator(
                "random_forest",
                Task.CLASSIFICATION,
                ForestClassifierParams,
                RandomForestClassifier,
                "random forest of decision trees",
                scaled=False,
            ),
            Estimator(
                "gradient_boosting",
                Task.CLASSIFICATION,
                BoostingClassifierParams,
                HistGradientBoostingClassifier,
                "histogram gradient boosting (LightGBM-like); early stopping above 10,000 rows",
                scaled=False,
                reads_missing=True,
            ),
            Estimator(
                "linear_svm",
                Task.CLASSIFICATION,
                LinearSvmParams,
                _linear_svm,
                "linear support vector machine, probabilities by sigmoid calibration over up to 3 folds",
            ),
        )
    },
    Task.REGRESSION: {
        e.name: e
        for e in (
            Estimator("ridge", Task.REGRESSION, RidgeParams, Ridge, "linear least squares with L2 regularization"),
            Estimator(
                "random_forest",
                Task.REGRESSION,
                ForestParams,
                RandomForestRegressor,
                "random forest of decision trees",
                scaled=False,
            ),
            Estimator(
                "gradient_boosting",
                Task.REGRESSION,
                BoostingParams,
                HistGradientBoostingRegressor,
                "histogram gradient boosting (LightGBM-like); early stopping above 10,000 rows",
                scaled=False,
                reads_missing=True,
            ),
        )
    },
}

DEFAULTS = {Task.CLASSIFICATION: "gradient_boosting", Task.REGRESSION: "gradient_boosting"}


def default_for(task: Task | str) -> str:
    """A sensible estimator when none is asked for: boosting handles mixed scales, missing
    values and interactions well without tuning."""
    return DEFAULTS[Task(task)]


def lookup(task: Task | str, name: str) -> Estimator:
    available = ESTIMATORS[Task(task)]
    if name not in available:
        raise UnknownEstimator(
            f"unknown estimator {name!r} for {Task(task).value}; choose one of {sorted(available)}",
            available=sorted(available),
        )
    return available[name]


def _problem(error: Mapping[str, Any]) -> str:
    name = error["loc"][0]
    return f"{name} {error['msg'].removeprefix('Input ')}, got {error['input']!r}"


def validate(
    task: Task | str, estimator: str, params: Mapping[str, Any] | None = None, bounds: Bounds | None = None
) -> dict[str, Any]:
    """Every parameter of the estimator, the given ones checked (against `bounds`, by default
    the default ones) and the rest at their defaults.

    The answer is canonical (all parameters, in a fixed order), so two requests that differ only
    by spelling out a default validate to the same dict, and so to the same job id.
    """
    spec = lookup(task, estimator)
    given = dict(params or {})
    takes = sorted(spec.params.model_fields)
    unknown = sorted(set(given) - set(takes))
    if SEEDED in unknown:
        raise InvalidParams(f"{SEEDED} is set from the job's seed, not a parameter of {estimator!r}", takes=takes)
    if unknown:
        raise InvalidParams(f"{estimator!r} takes no parameter {', '.join(unknown)}; it takes {takes}", takes=takes)
    try:
        checked = spec.params.model_validate(given).model_dump()
    except ValidationError as e:
        problems = [_problem(err) for err in e.errors()]
        raise InvalidParams(f"{estimator!r}: {'; '.join(problems)}", problems=problems) from None
    bounds = bounds or Bounds()
    problems = [
        f"{name} should be at most {getattr(bounds, bound)} (the bound {BOUND_SETTINGS[bound]}), got {checked[name]!r}"
        for name, bound in spec.params.BOUNDED.items()
        if checked[name] is not None and checked[name] > getattr(bounds, bound)
    ]
    if problems:
        raise InvalidParams(f"{estimator!r}: {'; '.join(problems)}", problems=problems)
    return checked


class ParamInfo(BaseModel):
    name: str
    type: str  # a JSON Schema type: integer, number, string
    default: Any
    nullable: bool
    choices: list[Any] | None = None
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: int | None = None  # the bound of a parameter that sizes the model
    description: str


class EstimatorInfo(BaseModel):
    name: str
    description: str
    params: list[ParamInfo]


def _param_info(name: str, schema: Mapping[str, Any], maximum: int | None) -> ParamInfo:
    options = schema.get("anyOf", [schema])
    values = [o for o in options if o.get("type") != "null"]
    # One allowed string is a "const", several an "enum".
    choices = [c for o in values for c in o.get("enum", [o["const"]] if "const" in o else [])] or None
    return ParamInfo(
        name=name,
        type=values[0]["type"],
        default=schema.get("default"),
        nullable=len(values) < len(options),
        choices=choices,
        minimum=values[0].get("minimum"),
        exclusive_minimum=values[0].get("exclusiveMinimum"),
        maximum=maximum,
        description=schema.get("description", ""),
    )


def describe(bounds: Bounds | None = None) -> dict[str, Any]:
    """The allow-list, JSON-ready: task -> its estimators, each with its parameters, their
    types, defaults and bounds."""
    bounds = bounds or Bounds()

    def maximum(spec: Estimator, name: str) -> int | None:
        bound = spec.params.BOUNDED.get(name)
        return getattr(bounds, bound) if bound else None

    return {
        task.value: [
            EstimatorInfo(
                name=spec.name,
                description=spec.description,
                params=[
                    _param_info(name, schema, maximum(spec, name))
                    for name, schema in spec.params.model_json_schema()["properties"].items()
                ],
            ).model_dump()
            for spec in by_name.values()
        ]
        for task, by_name in ESTIMATORS.items()
    }

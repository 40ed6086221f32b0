"""Inference duplicates two pieces of training's domain (services never import each other):
loading a model file and coercing input. These tests hold the copies to the originals on
models training itself makes."""

import numpy as np
import pytest

from services.inference.dataplane import _predictor
from services.inference.domain import modelfile, records
from services.inference.domain.card import Card, Feature
from services.training.domain import artifact, pipeline
from tests.unit.training.data import MIXED, mixed_rows


def test_inference_trusts_exactly_the_types_training_trusts():
    assert modelfile.TRUSTED == artifact.TRUSTED


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "gradient_boosting", "linear_svm"])
def test_a_model_file_training_writes_loads_and_predicts_the_same_from_records(estimator):
    rows = mixed_rows()
    data = pipeline.frame(rows, MIXED)
    X, y = pipeline.features_and_target(data, MIXED)
    fitted = pipeline.fit(pipeline.build_pipeline(MIXED, estimator, {}, seed=0), X, y)
    file = artifact.dumps(fitted)

    loaded = modelfile.load(file, artifact.sha256(file))
    features = [Feature(name=f.name, type=f.type.value) for f in MIXED.features]
    ours = records.frame(rows.to_pylist(), features)
    assert loaded.predict(ours).tolist() == fitted.predict(X).tolist()
    assert np.allclose(loaded.predict_proba(ours), fitted.predict_proba(X))
    # What inference answers when probabilities are asked: the most probable class, from one pass.
    card = Card(task="classification", target="species", features=features)
    predictions, proba = _predictor(card, loaded)(ours, True)
    assert predictions.tolist() == fitted.predict(X).tolist()
    assert proba is not None and np.allclose(proba, fitted.predict_proba(X))

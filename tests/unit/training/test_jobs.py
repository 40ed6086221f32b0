"""A job's spec: its lineage carries the rows labeled through feedback; its id does not depend on them."""

from services.training.domain.jobs import JobSpec, job_id


def spec(**changes) -> JobSpec:
    fields = {
        "job_id": "",
        "dataset": "iris",
        "version": 2,
        "schema": {},
        "schema_hash": "h",
        "task": "classification",
        "estimator": "random_forest",
        "params": {"n_estimators": 10},
        "model": "iris",
        "seed": 7,
    }
    return JobSpec.model_validate(fields | changes)


def test_the_lineage_carries_the_feedback_rows_and_none_by_default():
    assert spec(job_id="j").lineage().feedback_rows == 0
    lineage = spec(feedback_rows=40, job_id="j").lineage()
    assert (lineage.feedback_rows, lineage.dataset_version, lineage.seed, lineage.job_id) == (40, 2, 7, "j")


def test_the_job_id_covers_what_is_trained_and_how_not_the_feedback_rows():
    assert job_id(spec(feedback_rows=40)) == job_id(spec())
    assert job_id(spec(version=3)) != job_id(spec()) and job_id(spec(seed=8)) != job_id(spec())
    assert job_id(spec()).startswith("iris-v2-random-forest-")

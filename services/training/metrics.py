"""Training's own metrics (beside the kit's per-route HTTP metrics): jobs by how they ended, the
time of each step, the fit workers' queue, and how long fits take.

Everything is counted in the app process, where the numbers are known: the workflow function
and the activities run here (the engine hands them to this process), while a fit itself runs
in a worker process, which reports its own fit seconds back with its result. A job's end is
counted where the workflow function ends (COMPLETED or FAILED: that code runs once, when the
engine hands the last step's result back, not while earlier steps are replayed) or where a
cancel terminated it (CANCELED). Labels are only statuses, step names and estimator names the
service knows.
"""

import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.ports import ActivityFunction, WorkflowContext, WorkflowFunction

STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Seconds, from a registry call (milliseconds) to a fit of an hour (the job timeout's order)."""


class TrainingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        self.jobs = Counter(
            "daprml_training_jobs",
            "Training jobs that ended, by status (COMPLETED, FAILED, CANCELED)",
            ["status"],
            registry=registry,
        )
        self.submitted = Counter(
            "daprml_training_jobs_submitted", "Training jobs scheduled (a new workflow started)", registry=registry
        )
        self.refused = Counter(
            "daprml_training_jobs_refused",
            "Job submissions refused because too many jobs were waiting or running (429)",
            registry=registry,
        )
        self.steps = Histogram(
            "daprml_training_step_duration_seconds",
            "Time of one run of a job's step (a workflow activity: load, fit, evaluate, register, promote), "
            "waiting for a fit worker included, whether it succeeded or not",
            ["step"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.fits = Histogram(
            "daprml_training_fit_duration_seconds",
            "Seconds a model took to fit in its worker, by estimator",
            ["estimator"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        self.queued = Gauge(
            "daprml_training_jobs_queued",
            "Steps of jobs waiting for a fit worker in this replica",
            registry=registry,
        )
        self.running = Gauge(
            "daprml_training_jobs_running",
            "Steps of jobs computing in a fit worker of this replica",
            registry=registry,
        )

    def ended(self, status: str) -> None:
        self.jobs.labels(status).inc()

    def watch(self, queued: Callable[[], int], running: Callable[[], int]) -> None:
        """The gauges read the pool when scraped: nothing to count on the way."""
        self.queued.set_function(queued)
        self.running.set_function(running)

    def counting(self, workflow: WorkflowFunction) -> WorkflowFunction:
        """The workflow function, counting its job as COMPLETED or FAILED when it ends. Only the
        last run of the function gets that far: a replay of earlier steps ends at a yield."""

        def run(ctx: WorkflowContext, job: Any) -> Generator[Any, Any, Any]:
            try:
                result = yield from workflow(ctx, job)
            except Exception:
                self.ended("FAILED")
                raise
            self.ended("COMPLETED")
            return result

        return run

    def timed(self, activities: Mapping[str, ActivityFunction]) -> dict[str, ActivityFunction]:
        """The activities, each timed under its name; fit's result also gives its fit seconds."""
        return {name: self._timed(name, activity) for name, activity in activities.items()}

    def _timed(self, name: str, activity: ActivityFunction) -> ActivityFunction:
        async def run(step: Any) -> Any:
            started = time.perf_counter()
            try:
                result = await activity(step)
            finally:
                self.steps.labels(name).observe(time.perf_counter() - started)
            if name == "fit":
                self._fitted(step, result)
            return result

        return run

    def _fitted(self, job: Any, result: Any) -> None:
        """From fit's input (the job: its estimator, validated when submitted) and its result."""
        if isinstance(job, dict) and isinstance(result, dict) and isinstance(result.get("fit_s"), int | float):
            self.fits.labels(str(job.get("estimator"))).observe(float(result["fit_s"]))

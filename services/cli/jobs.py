"""daprml train, daprml jobs list | show | cancel"""

import json as jsonlib
import time
from typing import Annotated, Any

import typer

from services.cli import render
from services.cli.base import Json, gateway, handled, new_group
from services.cli.client import REFUSED, USAGE, CliError, Gateway, q

app = new_group("Training jobs: their status, stage, and result.")
DONE = ("COMPLETED", "FAILED", "CANCELED")
UNDONE = ("FAILED", "CANCELED")  # a job that ended without a model: the command fails


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """k=v pairs; a value that reads as JSON (200, 0.5, true, null, "x") is that value, any
    other is a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--param takes key=value, not {pair!r}", USAGE)
        try:
            params[key.strip()] = jsonlib.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


def outcome(job: dict[str, Any]) -> str:
    result = job.get("result") or {}
    if job["status"] == "COMPLETED" and result:
        promotion = (result.get("promotion") or {}).get("alias", "registered")
        return f"{result.get('model', job['model'])} v{result.get('version')} ({promotion})"
    return job.get("error") or "-"


def follow(gw: Gateway, job: dict[str, Any], timeout_s: float, interval_s: float = 0.5) -> dict[str, Any]:
    """Polls the job until it finishes, with a progress bar of its stage."""
    deadline = time.monotonic() + timeout_s
    with render.job_progress() as bar:
        task = bar.add_task(f"job {job['id'][:24]}", total=1.0, stage=job.get("stage") or job["status"].lower())
        while True:
            bar.update(task, completed=job.get("progress") or 0.0, stage=job.get("stage") or job["status"].lower())
            if job["status"] in DONE:
                return job
            if time.monotonic() > deadline:
                raise CliError(
                    f"job {job['id']} is still {job['status'].lower()} after {timeout_s:g} s; "
                    f"follow it with: daprml jobs show {job['id']}",
                    REFUSED,
                )
            time.sleep(interval_s)
            job = gw.get(f"/api/training/jobs/{q(job['id'])}")


def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Argument(help="The dataset to train on.")],
    estimator: Annotated[
        str | None, typer.Option(help="From GET /api/training/estimators; default: the policy's.")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="An estimator parameter, key=value.")] = None,
    version: Annotated[str, typer.Option(help="The dataset version: a number or 'latest'.")] = "latest",
    model: Annotated[str | None, typer.Option(help="The model to register into (default: the dataset's name).")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job until it finishes.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to follow the job before giving up.")] = 3600,
    json: Json = False,
) -> None:
    """Trains a model on a dataset version and follows the job (exit 1 if it fails)."""
    gw = gateway(ctx)
    body: dict[str, Any] = {"dataset": dataset, "version": int(version) if version.isdigit() else version}
    if estimator:
        body["estimator"] = estimator
    if param:
        body["params"] = parse_params(param)
    if model:
        body["model"] = model
    job = gw.post("/api/training/jobs", body)
    if wait:
        job = follow(gw, job, timeout)
    if json:
        render.print_json(job)
    else:
        show_job(job)
    if job["status"] in UNDONE:
        raise CliError(f"job {job['id']} {job['status'].lower()} at {job.get('stage')}: {job.get('error')}", REFUSED)


train_command = handled(train)


@app.command("list")
@handled
def list_command(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option(help="Only this dataset's jobs.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only jobs of this status: pending, running, completed, failed, canceled, suspended."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=1)] = 20,
    json: Json = False,
) -> None:
    """Training jobs, newest first."""
    answer = gateway(ctx).get("/api/training/jobs", dataset=dataset, status=status, limit=limit)
    if json:
        render.print_json(answer)
        return
    rows = [
        (j["id"], f"{j['dataset']} v{j['version']}", j["estimator"], j["status"], j.get("stage"), outcome(j))
        for j in answer["jobs"]
    ]
    render.table(None, ["job", "dataset", "estimator", "status", "stage", "result"], rows)


@app.command("show")
@handled
def show_command(ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="ID")], json: Json = False) -> None:
    """One job: status, stage, progress, and its model version and metrics once done."""
    job = gateway(ctx).get(f"/api/training/jobs/{q(job_id)}")
    if json:
        render.print_json(job)
    else:
        show_job(job)


@app.command("cancel")
@handled
def cancel_command(
    ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="ID")], json: Json = False
) -> None:
    """Cancels a job that has not finished: its fit stops, it shows status CANCELED. Submitting
    the same request again starts a new attempt."""
    job = gateway(ctx).request("DELETE", f"/api/training/jobs/{q(job_id)}").json()
    if json:
        render.print_json(job)
    else:
        show_job(job)


def show_job(job: dict[str, Any]) -> None:
    result = job.get("result") or {}
    pairs: list[tuple[str, Any]] = [
        ("job", job["id"]),
        ("dataset", f"{job['dataset']} v{job['version']}"),
        ("estimator", job["estimator"]),
        ("params", job.get("params") or "-"),
        ("status", job["status"]),
        ("stage", job.get("stage")),
        ("progress", f"{(job.get('progress') or 0) * 100:.0f}%"),
        ("created", render.when(job.get("created_at"))),
    ]
    if job.get("error"):
        pairs.append(("error", job["error"]))
    if result:
        pairs.append(("model", outcome(job)))
        pairs.append(("metrics", result.get("metrics")))
    render.fields(pairs)

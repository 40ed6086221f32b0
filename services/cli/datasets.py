"""daprml datasets upload | list | show"""

from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli import render
from services.cli.base import Json, fail, gateway, handled, new_group
from services.cli.client import USAGE, CliError, Gateway, q
from services.cli.upload import Saved, content_type, upload
from services.common.contracts import Task

app = new_group("Upload datasets and read their versions, schemas and profiles.")


def all_pages(gw: Gateway, path: str, key: str) -> dict[str, Any]:
    """Every item of a paged list, in one answer shaped like a page."""
    items: list[Any] = []
    while True:
        page = gw.get(path, offset=len(items), limit=100)
        items += page[key]
        if not page[key] or len(items) >= page["total"]:
            return {key: items, "total": page["total"]}


def size_of(text: str) -> int:
    """'8M', '512K' or a number of bytes; at most the gateway's 32 MiB a part."""
    units = {"K": 2**10, "M": 2**20}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = units.get(text[-1:], 1)
    try:
        size = int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise CliError(f"--part-size takes a size such as 8M, 512K or 100000, not {text!r}", USAGE) from None
    if not 1024 <= size <= 32 * 2**20:
        raise CliError("--part-size is between 1K and 32M", USAGE)
    return size


@app.command("upload")
@handled
def upload_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV, a JSON list of records, or NDJSON.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The dataset's name.")],
    target: Annotated[str | None, typer.Option(help="The target column; creates the dataset if it is new.")] = None,
    task: Annotated[Task | None, typer.Option(help="Inferred from the target when not given.")] = None,
    part_size: Annotated[str, typer.Option(help="Bytes per part (8M, 512K); a bigger file goes in parts.")] = "8M",
    parallel: Annotated[int, typer.Option(help="Parts in flight at once.", min=1, max=16)] = 4,
    json: Json = False,
) -> None:
    """Uploads a file as a new dataset version (resumable: run it again after an interruption)."""
    gw, part_bytes = gateway(ctx), size_of(part_size)
    if not file.is_file():
        raise CliError(f"{file}: no such file", USAGE)
    content_type(file)
    size = file.stat().st_size
    rows = 0
    try:
        with render.bytes_progress() as bar:
            task_id = bar.add_task(f"upload {file.name}", total=size, rows=0)

            def advance(done: int, accepted: int) -> None:
                nonlocal rows
                rows += accepted
                bar.update(task_id, advance=done, rows=f"{rows:,}")

            result, uploader = upload(
                gw, file, name, target, task.value if task else None, part_bytes, parallel, advance
            )
    except KeyboardInterrupt:
        resumable = Saved.load(file) is not None
        hint = "; run the same command again to continue the upload" if resumable else ""
        raise fail(f"interrupted{hint}", 130) from None
    if json:
        render.print_json(result)
        return
    state = "unchanged: identical to the latest version" if result.get("unchanged") else "new"
    render.out.print(
        f"{result['dataset']} v{result['version']} ({state}): {result['row_count']:,} rows accepted, "
        f"{result['rows_rejected']:,} rejected, {result['duplicates_dropped']:,} duplicates dropped",
        markup=False,
    )
    if uploader.resumed:
        render.out.print(f"resumed: {uploader.resumed} parts were already at the gateway", markup=False)
    for line in uploader.rejected:
        render.out.print(f"  rejected {line}", markup=False)


@app.command("list")
@handled
def list_command(ctx: typer.Context, json: Json = False) -> None:
    """The datasets, with their latest version."""
    answer = all_pages(gateway(ctx), "/api/datasets", "datasets")
    if json:
        render.print_json(answer)
        return
    rows = [
        (
            d["name"],
            d["task"],
            d["target"],
            d["versions"],
            d["latest_version"],
            d["latest_rows"],
            render.when(d["created_at"]),
        )
        for d in answer["datasets"]
    ]
    render.table(None, ["name", "task", "target", "versions", "latest", "rows", "created"], rows)


@app.command("show")
@handled
def show_command(
    ctx: typer.Context,
    name: str,
    version: Annotated[str | None, typer.Option(help="A version number or 'latest': its manifest and profile.")] = None,
    json: Json = False,
) -> None:
    """A dataset (schema, versions), or one version (its profile) with --version."""
    gw = gateway(ctx)
    if version is None:
        info = gw.get(f"/api/datasets/{q(name)}")
        if json:
            render.print_json(info)
            return
        render.fields([("dataset", info["name"]), ("task", info["task"]), ("target", info["target"])])
        columns = (info.get("schema") or {}).get("columns", [])
        render.table("schema", ["column", "type", "missing"], [(c["name"], c["type"], c["missing"]) for c in columns])
        versions = [
            (v["version"], v["row_count"], render.when(v["created_at"]), v["sha256"][:12]) for v in info["versions"]
        ]
        render.table("versions", ["version", "rows", "created", "sha256"], versions)
        return
    manifest = gw.get(f"/api/datasets/{q(name)}/versions/{q(version)}")
    if json:
        render.print_json(manifest)
        return
    show_manifest(manifest)


def show_manifest(manifest: dict[str, Any]) -> None:
    render.fields(
        [
            ("dataset", f"{manifest['dataset']} v{manifest['version']}"),
            ("rows", manifest["row_count"]),
            ("rejected", manifest["rows_rejected"]),
            ("duplicates dropped", manifest["duplicates_dropped"]),
            ("task / target", f"{manifest['schema']['task']} / {manifest['schema']['target']}"),
            ("sha256", manifest["sha256"]),
            ("created", render.when(manifest["created_at"])),
        ]
    )
    profile = manifest.get("profile", {})
    rows = []
    for column, stats in profile.get("columns", {}).items():
        counts = stats.get("counts")
        spread = (
            render.cell(dict(list(counts.items())[:5]))
            if counts
            else f"{render.cell(stats.get('min'))} .. {render.cell(stats.get('max'))}"
            if "min" in stats
            else "-"
        )
        rows.append((column, stats.get("type"), stats.get("missing"), stats.get("mean"), stats.get("std"), spread))
    render.table("profile", ["column", "type", "missing", "mean", "std", "range / top values"], rows)
    if "class_balance" in profile:
        render.fields([("class balance", profile["class_balance"])])

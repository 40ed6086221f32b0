"""The inference bench's tables: the figures of each target (medians of the runs), their ratios
to MLServer with adaptive batching on (its best configuration) and with it off, and the
issue's targets, each met or missed (figures, not assertions)."""

import os

from bench.httpload import BATCH_ROWS, CLOSED, Result

REFERENCE, UNBATCHED = "mlserver-batched", "mlserver"
TOP = 32  # the concurrency the throughput targets are stated at


def table(kind: str, version: int, results: list[Result], runtimes: dict[str, str], cs: list[int], runs: int) -> None:
    width = max(len(r.target.label) for r in results)
    head = " ".join(f"{'c=' + str(c):>7}" for c in cs)
    print(
        f"\n{kind} model (v{version}), the median of {runs} runs: latency of 1-row requests sent one at a time, "
        f"and throughput at c requests in flight"
    )
    print(f"{'target':<{width}} | {'p50 ms':>7} {'p99 ms':>7} | 1 row: req/s {head} | {BATCH_ROWS} rows: rows/s {head}")
    for r in results:
        small = " ".join(f"{r.cells[(1, c)].rps:>7.0f}" for c in cs)
        big = " ".join(f"{r.cells[(BATCH_ROWS, c)].rps * BATCH_ROWS:>7.0f}" for c in cs)
        print(f"{r.target.label:<{width}} | {r.p50_ms:>7.2f} {r.p99_ms:>7.2f} | {'':12}{small} | {'':14}{big}")
    print("served by: " + "; ".join(f"{r.target.label}: {runtimes.get(r.target.key, 'unknown')}" for r in results))


def ratios(results: list[Result], reference: str, cs: list[int]) -> None:
    ref = next(r for r in results if r.target.key == reference)
    width = max(len(r.target.label) for r in results)
    print(f"ratios to {ref.target.label}: throughput x (above 1: more), latency x (above 1: slower), same columns")
    for r in results:
        if r is ref:
            continue
        small = " ".join(f"{r.cells[(1, c)].rps / ref.cells[(1, c)].rps:>6.2f}x" for c in cs)
        big = " ".join(f"{r.cells[(BATCH_ROWS, c)].rps / ref.cells[(BATCH_ROWS, c)].rps:>6.2f}x" for c in cs)
        p50, p99 = r.p50_ms / ref.p50_ms, r.p99_ms / ref.p99_ms
        print(f"{r.target.label:<{width}} | {p50:>6.2f}x {p99:>6.2f}x | {'':12}{small} | {'':14}{big}")


def targets(results: list[Result], cs: list[int]) -> None:
    """The issue's targets (issue 19), on this machine: met or missed."""
    by = {r.target.key: r for r in results}
    ref, top = by[REFERENCE], TOP if TOP in cs else max(cs)
    note = "" if top == TOP else f" (c={TOP} not measured: c={top})"
    print(f"\ntargets (figures, not assertions), against MLServer with adaptive batching{note}:")

    def line(what: str, value: float, unit: str, goal: float, at_least: bool) -> None:
        met = value >= goal if at_least else value <= goal
        sign = ">=" if at_least else "<="
        print(f"  {what:<58} {value:7.2f}{unit} (target {sign} {goal:g}{unit}): target {'met' if met else 'missed'}")

    for key, goal in (("direct", 2.0), ("gateway", 1.0)):
        if key in by:
            ratio = by[key].cells[(1, top)].rps / ref.cells[(1, top)].rps
            line(f"1-row requests at c={top}, {by[key].target.label}", ratio, "x", goal, True)
    if "direct" in by:
        ratio = by["direct"].cells[(BATCH_ROWS, top)].rps / ref.cells[(BATCH_ROWS, top)].rps
        line(f"{BATCH_ROWS}-row requests at c={top}, rows/s, {by['direct'].target.label}", ratio, "x", 1.5, True)
    for key, goal in (("direct", 2.0), ("gateway", 6.0)):
        if key in by:
            line(f"a single 1-row request alone, p50, {by[key].target.label}", by[key].p50_ms, " ms", goal, False)


def spread(results: list[Result], cs: list[int], beyond: float = 1.5) -> None:
    """The figures whose runs disagree by more than `beyond` times: the machine was not quiet."""
    top, noisy = max(cs), []
    for r in results:
        figures = {
            "p50 ms": [run.p50_ms for run in r.runs],
            f"1 row c={top} req/s": [run.cells[(1, top)].rps for run in r.runs],
            f"{BATCH_ROWS} rows c={top} rows/s": [run.cells[(BATCH_ROWS, top)].rps * BATCH_ROWS for run in r.runs],
        }
        for what, values in figures.items():
            if len(values) > 1 and max(values) > beyond * max(min(values), 1e-9):
                shown = "/".join(f"{v:.2f}" if what.endswith("ms") else f"{v:.0f}" for v in values)
                noisy.append(f"{r.target.label} {what} {shown}")
    print(f"runs that disagree by more than {beyond:g}x: " + ("; ".join(noisy) if noisy else "none"))


def problems(results: list[Result]) -> None:
    """Non-200 answers, over every run, and how busy the machine and the client were."""
    errors = [
        f"{r.target.label} {rows} rows c={c}: "
        + ", ".join(f"{'no answer' if k == CLOSED else f'HTTP {k}'} x{n}" for k, n in sorted(cell.errors.items()))
        for r in results
        for (rows, c), cell in r.cells.items()
        if cell.errors
    ] + [f"{r.target.label} latency: {r.latency_errors}" for r in results if r.latency_errors]
    print("non-200 answers, all runs: " + ("; ".join(errors) if errors else "none"))
    busy = [cell.machine_busy for r in results for cell in r.cells.values()]
    client = [cell.client_cpu for r in results for cell in r.cells.values()]
    print(
        f"machine CPU busy during the throughput cells: {min(busy):.0%}-{max(busy):.0%} of {os.cpu_count()} cores; "
        f"the client process used {min(client):.0%}-{max(client):.0%} of one core"
    )


def report(kind: str, version: int, results: list[Result], runtimes: dict[str, str], cs: list[int], runs: int) -> None:
    table(kind, version, results, runtimes, cs, runs)
    ratios(results, REFERENCE, cs)
    ratios(results, UNBATCHED, cs)
    targets(results, cs)
    spread(results, cs)
    problems(results)

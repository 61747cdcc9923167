"""The ingest benchmark: ``python benchmarks/ingest.py [--rows N] [--json] [--sqlite-only]``.

Prints the markdown table (or the JSON report) on stdout and progress on stderr. What each
scenario measures: benchmarks/README.md. The latest numbers: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from rich.console import Console

from pipeline.bench import DATABASES, run_bench


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="careradar ingest benchmark: batched runner vs a naive loop, "
        "re-run of unchanged items, classification batching"
    )
    parser.add_argument("--rows", type=int, default=5000, help="items to generate (default 5000)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--sqlite-only", action="store_true", help="skip PostgreSQL (no server needed)"
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    databases = ("sqlite",) if args.sqlite_only else DATABASES

    console = Console(stderr=True)
    started = time.perf_counter()
    with console.status("starting", spinner="dots") as status:

        def progress(message: str) -> None:
            elapsed = time.perf_counter() - started
            console.log(f"[dim]{elapsed:6.1f}s[/dim] {message}")
            status.update(message)

        report = run_bench(rows=args.rows, databases=databases, progress=progress)
    sys.stdout.write(report.to_json() + "\n" if args.json else report.to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

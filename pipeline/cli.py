"""The ``careradar`` command line. Thin: parse, call, print.

Errors are one line plus a hint (``--debug`` adds the traceback); exit code 2 for configuration
problems, 1 for a failed run. Every list has ``--json`` for scripts. Text shown to a person has
PII redacted; the store keeps the original.
"""

from __future__ import annotations

import csv
import getpass
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO

import click
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pipeline import __version__, registry, sla
from pipeline.config import (
    AppConfig,
    find_config,
    format_duration,
    load_config,
    parse_duration,
    sla_warnings,
)
from pipeline.errors import CareradarError, ConfigError, NotFound
from pipeline.items import SlaState, Status, now_utc
from pipeline.nlp.pii import redact, redact_part
from pipeline.nlp.taxonomy import Topic
from pipeline.runner import Runner, RunResult
from pipeline.sinks.store import LABEL_TASKS, ItemRow, Label, Store, redact_url

app = typer.Typer(
    name="careradar",
    help="Watch what customers say, flag what needs a human, keep response-time promises.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Check and explain the configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
items_app = typer.Typer(help="Browse stored items.", no_args_is_help=True)
triage_app = typer.Typer(help="The queue of items that need a human.", no_args_is_help=True)
labels_app = typer.Typer(
    help="The team's own labels (careradar triage label), as training data.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(items_app, name="items")
app.add_typer(triage_app, name="triage")
app.add_typer(labels_app, name="labels")


def _console(*, stderr: bool = False) -> Console:
    """Piped output gets a wide fixed width instead of rich's 80 columns, so lines stay whole."""
    stream = sys.stderr if stderr else sys.stdout
    wide = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, highlight=False, width=None if wide else 160)


out = _console()
err = _console(stderr=True)
log = logging.getLogger("careradar")


@dataclass
class State:
    config_path: str | None = None
    db_url: str | None = None
    debug: bool = False
    _cfg: AppConfig | None = None

    def cfg(self) -> AppConfig:
        if self._cfg is None:
            path = find_config(self.config_path)
            self._cfg = load_config(path, registry.source_models(), database_url=self.db_url)
        return self._cfg

    def store(self, *, migrate: bool | None = None) -> Store:
        return Store.open(self.cfg().database.url, migrate=migrate)


state = State()


@app.callback()
def _root(
    config: Annotated[
        str | None,
        typer.Option(
            "--config", "-c", help="config file (default: $CARERADAR_CONFIG, ./careradar.yaml)"
        ),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="database URL, overrides the config")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show progress logs")] = False,
) -> None:
    state.config_path, state.db_url, state.debug, state._cfg = config, db, debug, None
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=debug, markup=False, rich_tracebacks=debug)],
        force=True,
    )
    for noisy in ("apscheduler", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str, indent=None) + "\n")


def _iso(dt: datetime | None) -> str:
    return "" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _relative(due: datetime | None, now: datetime) -> str:
    """'in 45s', 'overdue 1m2s', 'in 52m', 'overdue 2d3h': seconds only while they matter."""
    if due is None:
        return ""
    delta = (due - now).total_seconds()
    gap = abs(delta)
    if gap >= 600:
        gap = round(gap / 60) * 60
    text = format_duration(gap)
    return f"overdue {text}" if delta < 0 else f"in {text}"


def _snippet(text: str, width: int = 90) -> str:
    one_line = " ".join(redact(text).split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


_FLAG_STYLE = {
    "overdue": "bold red",
    "at_risk": "yellow",
    "urgent": "bold magenta",
    "negative": "red",
    "complaint": "orange3",
}


def _flags(flags: Sequence[str]) -> str:
    return " ".join(f"[{_FLAG_STYLE.get(f, '')}]{f}[/]" for f in flags)


def _since(value: str | None) -> datetime | None:
    """``7d`` (ago) or an ISO date/time."""
    if value is None:
        return None
    try:
        return now_utc() - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"'{value}' is neither a duration (7d, 12h) nor a date (2026-11-01)",
            hint="write --since 7d or --since 2026-11-01",
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# --- version, config, db ----------------------------------------------------------------------


@app.command()
def version(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the careradar version."""
    if as_json:
        _json({"version": __version__})
    else:
        out.print(f"careradar {__version__}")


def _classifier_runtime(cfg: AppConfig) -> dict[str, str | None] | None:
    """The model classifier's e5 runtime: ``requested`` (``classifier.e5_runtime``), the
    ``effective`` one (``E5TorchEncoder`` runs bf16 as fp32 on a CPU without native bfloat16)
    and why they differ (``reason``, None when they do not). None for other classifier kinds
    (without importing torch; the probe does) and when no language is routed to e5 (e.g.
    ``classifier.encoder: minilm``), where the setting has no effect."""
    c = cfg.classifier
    if c.kind != "model":
        return None
    from pipeline.nlp.e5torch import effective_dtype
    from pipeline.nlp.model import E5_RUNTIMES, default_models_dir, load_manifest, resolve_routes

    models_dir = cfg.resolve_path(c.models_dir) if c.models_dir else default_models_dir()
    routes = resolve_routes(load_manifest(models_dir).routes, c.encoder, c.quantize, c.e5_runtime)
    if E5_RUNTIMES[c.e5_runtime] not in routes.values():
        return None
    effective, reason = effective_dtype(c.e5_runtime)
    return {"requested": c.e5_runtime, "effective": effective, "reason": reason}


@config_app.command("check")
def config_check(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Validate the configuration and summarise sources, schedules and SLA policies."""
    cfg = state.cfg()
    if cfg.classifier.kind not in registry.classifier_names():
        raise ConfigError(
            f"{cfg.path}: classifier.kind: unknown classifier '{cfg.classifier.kind}'; "
            f"valid values are: {', '.join(registry.classifier_names())}"
        )
    if cfg.classifier.taxonomy:
        from pipeline.nlp.taxonomy import load_taxonomy

        load_taxonomy(cfg.resolve_path(cfg.classifier.taxonomy))
    from pipeline.collectors.chat import intake_warnings

    warnings = sla_warnings(cfg) + intake_warnings(cfg)
    runtime = _classifier_runtime(cfg)
    if as_json:
        _json(
            {
                "file": cfg.path,
                "ok": True,
                "database": redact_url(cfg.database.url),
                "classifier": cfg.classifier.kind,
                "classifier_runtime": runtime,
                "sources": [
                    {
                        "name": s.name,
                        "kind": s.kind,
                        "channel": s.channel,
                        "brand": s.brand,
                        "enabled": s.enabled,
                        "schedule": s.schedule.describe(cfg.scheduler.default_every),
                        "sla_policy": cfg.sla.policy_for(s.channel, s.sla_policy)[0]
                        if s.channel
                        else s.sla_policy,
                    }
                    for s in cfg.sources
                ],
                "sla": {
                    name: {"target_seconds": p.target, "at_risk": p.at_risk}
                    for name, p in cfg.sla.policies.items()
                },
                "warnings": warnings,
            }
        )
        return
    out.print(f"[green]ok[/] {escape(cfg.path or '(defaults)')}")
    out.print(
        f"database: {escape(redact_url(cfg.database.url))}   classifier: {cfg.classifier.kind}"
    )
    if runtime is not None:
        why = (
            f" (requested {runtime['requested']}; {runtime['reason']})" if runtime["reason"] else ""
        )
        out.print(f"e5 runtime: {runtime['effective']}{why}")
    table = Table(title="sources", title_justify="left")
    for col in ("name", "kind", "channel", "brand", "schedule", "SLA"):
        table.add_column(col)
    for s in cfg.sources:
        policy = ""
        if s.channel:
            name, p = cfg.sla.policy_for(s.channel, s.sla_policy)
            policy = f"{name} ({format_duration(p.target)})"
        label = s.name if s.enabled else f"{s.name} [dim](disabled)[/]"
        table.add_row(
            label,
            s.kind,
            s.channel or "",
            s.brand or "",
            s.schedule.describe(cfg.scheduler.default_every),
            policy,
        )
    out.print(table)
    pol = Table(title="SLA policies", title_justify="left")
    for col in ("policy", "target", "at risk", "channels"):
        pol.add_column(col)
    for name, p in cfg.sla.policies.items():
        channels = ", ".join(c for c, n in cfg.sla.channels.items() if n == name)
        pol.add_row(name, format_duration(p.target), p.at_risk, channels)
    out.print(pol)
    for w in warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to this version of careradar."""
    store = state.store(migrate=False)
    try:
        before, after = store.upgrade()
    finally:
        store.close()
    url = redact_url(state.cfg().database.url)
    if before == after:
        out.print(f"{escape(url)} is up to date (revision {after})")
    else:
        out.print(f"{escape(url)}: migrated {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    store = state.store(migrate=False)
    try:
        out.print(store.current_revision() or "(empty: run careradar db upgrade)")
    finally:
        store.close()


# --- running ----------------------------------------------------------------------------------


@contextmanager
def _runner() -> Iterator[Runner]:
    cfg = state.cfg()
    store = state.store()
    try:
        yield Runner(cfg, store)
    finally:
        store.close()


def _print_result(r: RunResult) -> None:
    if r.status == "not_configured":
        err.print(f"[yellow]skipped[/] {r.source}: {escape(r.error or '')}")
        if r.hint:
            err.print(f"  hint: {escape(r.hint)}")
        return
    colour = {"ok": "green", "partial": "yellow", "error": "red"}.get(r.status, "cyan")
    parts = [f"{r.seen} seen", f"{r.new} new", f"{r.updated} updated", f"{r.duplicate} cross-posts"]
    if r.responded:
        parts.append(f"{r.responded} answered")
    if r.bad:
        parts.append(f"[yellow]{r.bad} bad input[/] (careradar bad-inputs --source {r.source})")
    out.print(
        f"[{colour}]{r.status:>7}[/] {r.source}: " + ", ".join(parts) + f" in {r.duration_s:.1f}s"
    )
    if r.error:
        err.print(f"  error: {escape(r.error)}")
        if r.hint:
            err.print(f"  hint: {escape(r.hint)}")


def _print_json_result(r: RunResult) -> None:
    """One JSON object per line per finished run: easy to tail and to ship to a log pipeline."""
    _json(r.to_json())
    sys.stdout.flush()


def _run_sources(runner: Runner, names: Sequence[str], as_json: bool) -> list[RunResult]:
    sources = [runner.cfg.source(n) for n in names] if names else runner.cfg.sources
    results = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[seen]} items"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json or not err.is_terminal,
    ) as progress:
        for src in sources:
            task = progress.add_task(src.name, total=None, seen=0)

            def show(res: RunResult, t: TaskID = task) -> None:
                progress.update(t, seen=res.seen)

            r = runner.run_once(src, on_batch=show)
            progress.remove_task(task)
            results.append(r)
            if not as_json:
                _print_result(r)
    return results


@app.command()
def run(
    once: Annotated[bool, typer.Option("--once", help="run every source once, then exit")] = False,
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="only this source")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Collect on schedule until stopped (SIGINT/SIGTERM finish the current batch)."""
    with _runner() as runner:
        if not runner.cfg.sources:
            raise ConfigError(
                f"{runner.cfg.path or 'no config file'}: no sources configured",
                hint="add a 'sources:' list (see config/example.yaml) or pass --config",
            )
        if once:
            results = _run_sources(runner, source or [], as_json)
            if as_json:
                _json([r.to_json() for r in results])
            if any(r.failed for r in results):
                raise typer.Exit(1)
            return
        from pipeline.scheduler import serve

        if source:
            keep = set(source)
            for name in keep:
                runner.cfg.source(name)
            runner.cfg = runner.cfg.model_copy(
                update={"sources": [s for s in runner.cfg.sources if s.name in keep]}
            )
        err.print(
            f"careradar {__version__}: {len([s for s in runner.cfg.sources if s.enabled])} "
            "sources scheduled; Ctrl-C stops after the current batch"
        )
        serve(runner, on_result=_print_json_result if as_json else _print_result)


@app.command()
def collect(
    name: Annotated[str, typer.Argument(help="source name from the config")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be stored; write nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run one source once (or preview it with --dry-run)."""
    cfg = state.cfg()
    src = cfg.source(name)
    if not dry_run:
        with _runner() as runner:
            results = _run_sources(runner, [src.name], as_json)
        if as_json:
            _json(results[0].to_json())
        if results[0].failed:
            raise typer.Exit(1)
        return
    # A dry run reads the store (to tell new from known) but never writes to it.
    store = Store.open(cfg.database.url) if _store_exists(cfg) else None
    try:
        r = Runner(cfg, store).run_once(src, dry_run=True)
    finally:
        if store is not None:
            store.close()
    if as_json:
        _json(
            {
                "result": r.to_json(),
                "items": [_processed_json(p) for p in r.dry_run_items],
                "bad_inputs": [
                    {"reason": b.reason, "location": b.location, "raw_sha256": b.raw_sha256}
                    for b in r.dry_run_bad
                ],
                "cursor": r.dry_run_cursor,
            }
        )
    else:
        table = Table(title=f"{src.name}: would store {len(r.dry_run_items)} items (dry run)")
        for col in ("id", "created", "sentiment", "complaint", "urgency", "due", "text"):
            table.add_column(col)
        for p in r.dry_run_items[:200]:
            c = p.classification
            table.add_row(
                escape(p.item.external_id),
                _iso(p.item.created_at),
                c.sentiment.value if c else "",
                "yes" if c and c.is_complaint else "",
                c.urgency.value if c else "",
                _iso(p.sla.due_at) if p.sla else "",
                escape(_snippet(p.item.text, 60)),
            )
        out.print(table)
        for b in r.dry_run_bad:
            out.print(f"[yellow]bad input[/] {escape(b.location)}: {escape(b.reason)}")
        _print_result(r)
    if r.failed:
        raise typer.Exit(1)


def _store_exists(cfg: AppConfig) -> bool:
    url = cfg.database.url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return True


def _iso_z(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


def _redact_deep(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_deep(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_deep(v) for v in value]
    return value


def _processed_json(p: Any) -> dict[str, Any]:
    """Everything the store would write for one item (PII redacted for display)."""
    item, c, s = p.item, p.classification, p.sla
    return {
        "source": item.source,
        "external_id": item.external_id,
        "channel": item.channel.value,
        "platform": item.platform,
        "brand": item.brand,
        "thread_id": item.thread_id,
        "parent_id": item.parent_id,
        "author": item.author,
        "author_is_brand": item.author_is_brand,
        "url": item.url,
        "title": redact(item.title) if item.title else item.title,
        "text": redact(item.text),
        "language": item.language,
        "created_at": _iso_z(item.created_at),
        "collected_at": _iso_z(item.collected_at),
        "content_hash": item.content_hash,
        "fingerprint": p.fingerprint,
        "duplicate_of": list(p.duplicate_of) if p.duplicate_of else None,
        "classification": None
        if c is None
        else {
            "model_version": c.model_version,
            "sentiment": c.sentiment.value,
            "sentiment_scores": dict(c.sentiment_scores),
            "is_complaint": c.is_complaint,
            "complaint_score": c.complaint_score,
            "urgency": c.urgency.value,
            "topics": dict(c.topics),
            "entities": [
                {"label": e.label, "text": redact_part(item.text, e.text, e.start, e.end)}
                for e in c.entities
            ],
            "language_supported": c.language_supported,
        },
        "sla": None
        if s is None
        else {
            "policy": s.policy,
            "target_seconds": s.target_seconds,
            "started_at": _iso_z(s.started_at),
            "due_at": _iso_z(s.due_at),
            "at_risk_at": _iso_z(s.at_risk_at),
        },
        "raw": _redact_deep(dict(item.raw)),
    }


def _shown_note(note: str | None) -> str | None:
    """A staff note (a label's or a history event's) as shown to a person: notes are free text
    and may quote the customer's e-mail or phone, so they follow the item text's redaction."""
    return redact(note) if note else note


def _redact_label_notes(data: dict[str, Any]) -> None:
    """Redact the label notes of ``ItemRow.to_json``'s ``labels`` in place (``_shown_note``)."""
    for label in (data.get("labels") or {}).values():
        label["note"] = _shown_note(label.get("note"))


# --- reading ----------------------------------------------------------------------------------


def _row_json(row: ItemRow) -> dict[str, Any]:
    data = _redacted(row)
    data.pop("raw", None)
    return data


def _redacted(row: ItemRow) -> dict[str, Any]:
    """``row.to_json()`` with PII redacted in the text, title, entities and label notes."""
    data = row.to_json()
    data["text"] = redact(row.text or "")
    if data.get("title"):
        data["title"] = redact(data["title"])
    for entity in data.get("entities") or ():
        entity["text"] = redact_part(row.text or "", entity["text"], entity["start"], entity["end"])
    _redact_label_notes(data)
    return data


def _item_table(rows: Sequence[ItemRow], title: str, now: datetime) -> Table:
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("id", justify="right")
    table.add_column("due")
    table.add_column("channel")
    table.add_column("source")
    table.add_column("flags")
    table.add_column("text", overflow="fold", max_width=70)
    for r in rows:
        due = _relative(r.due_at, now) if r.due_at else ""
        style = "red" if "overdue" in r.flags else "yellow" if "at_risk" in r.flags else ""
        table.add_row(
            str(r.id),
            f"[{style}]{due}[/]" if style else due,
            r.channel,
            escape(r.source),
            _flags(r.flags),
            escape(_snippet(((r.title + ": ") if r.title else "") + r.text)),
        )
    return table


@triage_app.command("list")
def triage_list(
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    source: Annotated[str | None, typer.Option("--source")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    brand: Annotated[str | None, typer.Option("--brand")] = None,
    flag: Annotated[
        str | None, typer.Option("--flag", help="negative, complaint, urgent, at_risk, overdue")
    ] = None,
    assignee: Annotated[str | None, typer.Option("--assignee")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Open items that need a human, most urgent first."""
    now = now_utc()
    with _store_ctx() as store:
        rows = store.triage(
            now=now,
            limit=limit,
            source=source,
            channel=channel,
            brand=brand,
            flag=flag,
            assignee=assignee,
        )
    if as_json:
        _json([_row_json(r) for r in rows])
        return
    if not rows:
        out.print("The queue is empty: nothing needs a human right now.")
        return
    out.print(_item_table(rows, f"triage queue ({len(rows)} shown, {now:%Y-%m-%d %H:%M} UTC)", now))


@contextmanager
def _store_ctx() -> Iterator[Store]:
    store = state.store()
    try:
        yield store
    finally:
        store.close()


def _set_status(item_id: int, status: Status, note: str | None, actor: str, as_json: bool) -> None:
    with _store_ctx() as store:
        row = store.set_status(item_id, status, actor=actor, note=note)
    if as_json:
        _json(_row_json(row))
    else:
        out.print(f"item {row.id}: {row.status}")


_ACTOR = typer.Option("--as", help="who is acting, for the item's history (default: your login)")


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


_TRANSITIONS = {
    "ack": (Status.ACKNOWLEDGED, "Mark an item acknowledged (someone is on it; the clock runs)."),
    "respond": (Status.RESPONDED, "Mark an item responded (stops the clock if no reply was seen)."),
    "resolve": (Status.RESOLVED, "Mark an item resolved."),
    "ignore": (Status.IGNORED, "Take an item out of the queue without a reply (spam, not ours)."),
    "reopen": (Status.NEW, "Put an item back in the queue."),
}


def _status_command(status: Status, doc: str) -> Any:
    def command(
        item_id: int,
        note: Annotated[str | None, typer.Option("--note")] = None,
        actor: Annotated[str | None, _ACTOR] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        _set_status(item_id, status, note, actor or _whoami(), as_json)

    command.__doc__ = doc
    return command


for _name, (_status, _doc) in _TRANSITIONS.items():
    triage_app.command(_name)(_status_command(_status, _doc))


@triage_app.command("assign")
def triage_assign(
    item_id: int,
    assignee: Annotated[str, typer.Argument(help="who should handle it; '-' to unassign")],
    actor: Annotated[str | None, _ACTOR] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Assign an item to a person."""
    with _store_ctx() as store:
        row = store.assign(item_id, None if assignee == "-" else assignee, actor=actor or _whoami())
    if as_json:
        _json(_row_json(row))
    else:
        out.print(f"item {row.id}: assigned to {row.assignee or 'nobody'}")


def _configured_taxonomy() -> tuple[list[Topic], str]:
    """The taxonomy the configured classifier uses, and how to name it."""
    from pipeline.nlp.taxonomy import DEFAULT_TAXONOMY, load_taxonomy

    cfg = state.cfg()
    path = cfg.resolve_path(cfg.classifier.taxonomy) if cfg.classifier.taxonomy else None
    return load_taxonomy(path), str(path or DEFAULT_TAXONOMY)


def _label_text(value: str | tuple[str, ...] | None) -> str:
    if value is None:
        return "nothing (not classified)"
    if isinstance(value, tuple):
        return ", ".join(value) or "no topic"
    return value


def _label_line(label: Label) -> str:
    note = f" ({escape(_shown_note(label.note) or '')})" if label.note else ""
    return (
        f"{label.task} {escape(_label_text(label.value))} by {escape(label.actor)} at "
        f"{_iso(label.labelled_at)} UTC; model said {escape(_label_text(label.model_value))}"
        f"{note}"
    )


def _asks_for_reply(row: ItemRow, given: Mapping[str, Any]) -> str:
    """'complaint=yes', 'urgency=high' (or both) when the labels just given say the item needs
    someone's attention; '' otherwise. Un-labelling never takes a clock away."""
    asks = [
        f"{task}={value}"
        for task, value in (("complaint", "yes"), ("urgency", "high"))
        if task in given and task in row.labels and row.labels[task].value == value
    ]
    return ", ".join(asks)


def _label_clock(row: ItemRow) -> SlaState:
    """The reply clock the runner's policy gives the item (its source's ``sla_policy``, if the
    source is still configured), counted from when the customer posted."""
    cfg = state.cfg()
    override = next((s.sla_policy for s in cfg.sources if s.name == row.source), None)
    return sla.start_clock(row.channel, row.created_at, cfg.sla, policy_override=override)


@triage_app.command("label")
def triage_label(
    ref: Annotated[str, typer.Argument(help="item id, or SOURCE:EXTERNAL_ID")],
    sentiment: Annotated[
        str | None, typer.Option("--sentiment", help="negative, neutral or positive")
    ] = None,
    complaint: Annotated[str | None, typer.Option("--complaint", help="yes or no")] = None,
    urgency: Annotated[str | None, typer.Option("--urgency", help="low, normal or high")] = None,
    topics: Annotated[
        str | None,
        typer.Option(
            "--topics",
            help="topic names of the configured taxonomy, comma-separated ('-': none of them)",
        ),
    ] = None,
    clear: Annotated[
        list[str] | None,
        typer.Option(
            "--clear",
            help="remove the label of TASK (sentiment, complaint, urgency, topics or all): "
            "the model's value shows again",
        ),
    ] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    actor: Annotated[str | None, _ACTOR] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Correct the model for an item: a person's label overrides it in the queue (flags
    included) and trains the heads (careradar train --from-store)."""
    values: dict[str, Any] = {
        task: value
        for task, value in (
            ("sentiment", sentiment),
            ("complaint", complaint),
            ("urgency", urgency),
        )
        if value is not None
    }
    if topics is not None:
        values["topics"] = [] if topics.strip() in ("", "-") else topics
    cleared = list(clear or [])
    if "all" in cleared:
        cleared = [t for t in LABEL_TASKS if t not in values]
    if not values and not cleared:
        raise ConfigError(
            "nothing to label: give --sentiment, --complaint, --urgency, --topics or --clear",
            hint="e.g. careradar triage label 49 --sentiment neutral --complaint no",
        )
    names = [t.name for t in _configured_taxonomy()[0]] if "topics" in values else None
    who = actor or _whoami()
    with _store_ctx() as store:
        item_id = _lookup(store, ref).id
        row = store.set_labels(item_id, values, clear=cleared, actor=who, note=note, taxonomy=names)
        asked = _asks_for_reply(row, values)
        opened = bool(asked) and not row.needs_reply
        if opened:
            row = store.open_clock(
                row.id, _label_clock(row), actor=who, note=f"label {asked} opened the reply clock"
            )
            opened = row.needs_reply
    if as_json:
        _json(_row_json(row))
        return
    out.print(f"item {row.id}: flags {_flags(row.flags) or 'none'}")
    if opened and row.due_at is not None:
        out.print(
            f"  reply clock opened ({row.policy}, from the post): due {_iso(row.due_at)} UTC, "
            f"status {row.status}"
        )
    for label in row.labels.values():
        out.print(f"  {_label_line(label)}")
    if not row.labels:
        out.print("  no labels by people: the model's values show")


@items_app.command("list")
def items_list(
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    offset: Annotated[int, typer.Option("--offset")] = 0,
    source: Annotated[str | None, typer.Option("--source")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    brand: Annotated[str | None, typer.Option("--brand")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    sentiment: Annotated[str | None, typer.Option("--sentiment")] = None,
    since: Annotated[str | None, typer.Option("--since", help="7d, 12h or a date")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="text contains")] = None,
    duplicates: Annotated[bool, typer.Option("--duplicates", help="include cross-posts")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """All stored items (newest first), praise and chatter included."""
    now = now_utc()
    with _store_ctx() as store:
        rows = store.list_items(
            limit=limit,
            offset=offset,
            source=source,
            channel=channel,
            brand=brand,
            status=status,
            sentiment=sentiment,
            since=_since(since),
            search=search,
            include_duplicates=duplicates,
            now=now,
        )
    if as_json:
        _json([_row_json(r) for r in rows])
        return
    table = Table(title=f"items ({len(rows)} shown)", title_justify="left")
    for col in ("id", "created", "channel", "source", "lang", "sentiment", "status", "text"):
        table.add_column(col, overflow="fold", max_width=70 if col == "text" else None)
    for r in rows:
        table.add_row(
            str(r.id),
            _iso(r.created_at),
            r.channel,
            escape(r.source),
            r.language or "",
            r.sentiment or "",
            r.status,
            escape(_snippet(r.text)),
        )
    out.print(table)


def _lookup(store: Store, ref: str) -> ItemRow:
    row = None
    if ref.isdigit():
        row = store.get_item(int(ref))
    elif ":" in ref:
        source, external_id = ref.split(":", 1)
        row = store.find_item(source, external_id)
    if row is None:
        raise NotFound(f"no item '{ref}'", hint="give the numeric id or SOURCE:EXTERNAL_ID")
    return row


@items_app.command("show")
def items_show(
    ref: Annotated[str, typer.Argument(help="item id, or SOURCE:EXTERNAL_ID")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """One item with its classification, SLA and history."""
    now = now_utc()
    with _store_ctx() as store:
        row = _lookup(store, ref)
        events = [{**e, "note": _shown_note(e.get("note"))} for e in store.item_events(row.id)]
    if as_json:
        data = _row_json(row)
        data["events"] = events
        _json(data)
        return
    brand = " (brand)" if row.author_is_brand else ""
    out.print(
        f"[bold]#{row.id}[/] {escape(row.source)}:{escape(row.external_id)}  "
        f"{row.channel}/{escape(row.platform)}  {escape(row.url or '')}"
    )
    out.print(
        f"by {escape(row.author or '?')}{brand} at {_iso(row.created_at)} UTC, "
        f"language {row.language or '?'}"
    )
    if row.title:
        out.print(f"[bold]{escape(redact(row.title))}[/]")
    out.print(escape(redact(row.text)))
    out.print()
    if row.sentiment:
        scores = ", ".join(f"{k} {v:.2f}" for k, v in (row.sentiment_scores or {}).items())
        topics = ", ".join(f"{k} {v:.2f}" for k, v in (row.topics or {}).items()) or "none"
        if "topics" in row.labels:
            topics = _label_text(row.labels["topics"].value)
        # A value a person set is marked "(corrected)": it replaces the model's.
        fixed = {task: " [bold](corrected)[/]" for task in row.labels}
        out.print(
            f"sentiment {row.sentiment}{fixed.get('sentiment', '')} ({scores}); "
            f"complaint {'yes' if row.is_complaint else 'no'}{fixed.get('complaint', '')}; "
            f"urgency {row.urgency}{fixed.get('urgency', '')}; "
            f"topics {escape(topics)}{fixed.get('topics', '')}  [dim]{row.model_version}[/]"
        )
    for label in row.labels.values():
        out.print(f"corrected: {_label_line(label)}")
    if row.due_at:
        first = _iso(row.first_response_at) or "none yet"
        out.print(
            f"SLA {row.policy} {format_duration(row.target_seconds or 0)}: "
            f"due {_iso(row.due_at)} UTC ({_relative(row.due_at, now)}); first response {first}"
        )
    assigned = f" assigned to {escape(row.assignee)}" if row.assignee else ""
    out.print(f"status {row.status}{assigned}; flags {_flags(row.flags) or 'none'}")
    for e in events:
        out.print(
            f"  {e['at']} {escape(str(e['actor']))}: {e['kind']} "
            f"{e.get('from_value') or ''} -> {e.get('to_value') or ''} "
            f"{escape(e.get('note') or '')}"
        )


@app.command("bad-inputs")
def bad_inputs(
    source: Annotated[str | None, typer.Option("--source")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Records that could not be used: what was wrong and where."""
    with _store_ctx() as store:
        rows = store.bad_inputs(source=source, limit=limit)
    if as_json:
        _json(rows)
        return
    if not rows:
        out.print("No bad input recorded.")
        return
    table = Table(title="bad input", title_justify="left")
    for col in ("source", "where", "reason", "seen"):
        table.add_column(col, overflow="fold")
    for b in rows:
        table.add_row(
            escape(b["source"]), escape(b["location"]), escape(b["reason"]), str(b["times_seen"])
        )
    out.print(table)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Health of every source: last run, last success, items, errors, lag."""
    cfg = state.cfg()
    with _store_ctx() as store:
        rows = store.source_status([s.name for s in cfg.sources] or None)
        alerts: dict[str, list[dict[str, Any]]] = {}
        for a in store.firing_alerts():
            if a["kind"].startswith("source_") and a["source"]:
                alerts.setdefault(a["source"], []).append(a)
    if as_json:
        _json(
            [
                {
                    **_status_json(r),
                    "alerts": [
                        {
                            "kind": a["kind"],
                            "reason": a["reason"],
                            "since": a["first_at"].isoformat().replace("+00:00", "Z"),
                        }
                        for a in alerts.get(r.source, [])
                    ],
                }
                for r in rows
            ]
        )
        return
    table = Table(title="sources", title_justify="left")
    for col in (
        "source",
        "last run",
        "status",
        "last success",
        "items",
        "last run items",
        "bad",
        "lag",
        "health",
        "error",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        colour = {"ok": "green", "partial": "yellow", "error": "red"}.get(r.last_status or "", "")
        st = f"[{colour}]{r.last_status}[/]" if colour else (r.last_status or "never ran")
        if r.consecutive_failures > 1:
            st += f" ({r.consecutive_failures} in a row)"
        table.add_row(
            escape(r.source),
            _iso(r.last_run_at),
            st,
            _iso(r.last_success_at),
            str(r.items_total),
            str(r.items_last_run or 0),
            str(r.bad_total),
            format_duration(r.lag_seconds) if r.lag_seconds is not None else "",
            "\n".join(
                f"[red]{a['kind'].removeprefix('source_')}[/] since {_iso(a['first_at'])}"
                for a in alerts.get(r.source, [])
            )
            or "[green]ok[/]",
            escape(r.last_error or ""),
        )
    out.print(table)


def _status_json(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(r)
    for k, v in data.items():
        if isinstance(v, datetime):
            data[k] = v.isoformat().replace("+00:00", "Z")
    return data


EXPORT_COLUMNS = (
    "id",
    "source",
    "external_id",
    "channel",
    "platform",
    "brand",
    "author",
    "author_is_brand",
    "created_at",
    "collected_at",
    "language",
    "title",
    "text",
    "url",
    "status",
    "assignee",
    "sentiment",
    "is_complaint",
    "urgency",
    "topics",
    "policy",
    "target_seconds",
    "due_at",
    "first_response_at",
    "breached",
    "flags",
    "model_version",
)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or jsonl")] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default: stdout)")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="7d, 12h or a date")] = None,
    until: Annotated[str | None, typer.Option("--until")] = None,
    source: Annotated[str | None, typer.Option("--source")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="keep e-mails, phones, cards")
    ] = False,
) -> None:
    """Export items with classification and SLA figures (streams; any size)."""
    if fmt not in ("csv", "jsonl"):
        raise ConfigError(f"--format: unknown format '{fmt}'; valid values are: csv, jsonl")
    now = now_utc()
    count = 0
    with _store_ctx() as store, _open_out(output) as fh:
        writer = (
            csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            if fmt == "csv"
            else None
        )
        if writer is not None:
            writer.writeheader()
        for row in store.iter_export(
            since=_since(since), until=_since(until), source=source, channel=channel, now=now
        ):
            data = row.to_json() if no_redact else _redacted(row)
            data.pop("raw", None)
            if writer is not None:
                flat = {
                    k: (json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v)
                    for k, v in data.items()
                }
                writer.writerow(flat)
            else:
                fh.write(json.dumps(data, ensure_ascii=False) + "\n")
            count += 1
    if output is not None:
        err.print(f"exported {count} items to {output}")


LABEL_EXPORT_COLUMNS = (
    "text",
    "label",
    "topics",
    "language",
    "task",
    "item_id",
    "labelled_at",
    "actor",
    "model_value",
    "model_version",
)


@labels_app.command("export")
def labels_export(
    task: Annotated[
        str | None,
        typer.Option("--task", help="sentiment, complaint, urgency or topics (default: all)"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl or csv")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file (default: stdout)")
    ] = None,
    no_redact: Annotated[
        bool, typer.Option("--no-redact", help="keep e-mails, phones, cards in the texts")
    ] = False,
) -> None:
    """Write the team's labels as a training file (careradar train --data FILE reads it): the
    text the classifier reads, the label, language, task, and what the model said."""
    from pipeline.nlp.train import TOPICS_TASK, store_export_rows

    if fmt not in ("csv", "jsonl"):
        raise ConfigError(f"--format: unknown format '{fmt}'; valid values are: csv, jsonl")
    if task is not None and task not in LABEL_TASKS:
        raise ConfigError(
            f"--task: unknown task '{task}'; valid values are: {', '.join(LABEL_TASKS)}"
        )
    tasks = [task] if task else list(LABEL_TASKS)
    with _store_ctx() as store:
        records = list(store.iter_labels(task))
    rows = [r for t in tasks for r in store_export_rows(records, t)]
    # A topics column makes `train --task all` read the file for topics too: only with them.
    with_topics = any(r["task"] == TOPICS_TASK for r in rows)
    columns = [c for c in LABEL_EXPORT_COLUMNS if with_topics or c != "topics"]
    with _open_out(output) as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        if fmt == "csv":
            writer.writeheader()
        for r in rows:
            if not no_redact:
                r["text"] = redact(r["text"])
            if fmt == "csv":
                writer.writerow(
                    {
                        **r,
                        "topics": ";".join(r["topics"] or []),
                        "model_value": ";".join(r["model_value"])
                        if isinstance(r["model_value"], list)
                        else r["model_value"],
                    }
                )
            else:
                fh.write(json.dumps({c: r[c] for c in columns}, ensure_ascii=False) + "\n")
    counts = ", ".join(f"{t} {sum(r['task'] == t for r in rows)}" for t in tasks)
    if output is not None:
        err.print(f"exported {len(rows)} labels ({counts}) to {output}")


@contextmanager
def _open_out(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as fh:
        yield fh


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port")] = 8080,
) -> None:
    """Run the web app: chat intake at POST /intake/chat/SOURCE (signed requests only)."""
    import uvicorn

    from pipeline.web.app import create_app

    cfg = state.cfg()
    with _store_ctx() as store:
        chat = [s.name for s in cfg.sources if s.kind == "chat" and s.enabled]
        err.print(
            f"careradar {__version__}: listening on http://{host}:{port}; chat intake for "
            + (", ".join(chat) or "no chat sources")
        )
        uvicorn.run(
            create_app(cfg, store=store),
            host=host,
            port=port,
            log_level="debug" if state.debug else "warning",
            server_header=False,
        )


@app.command()
def train(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="extra labelled CSV/JSONL (text,label[,language,task]); for topics: "
            "text,topics (topics: 'delivery;billing' or a JSON list)",
        ),
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="sentiment|complaint|urgency|topics|all (all: topics too if a --data file "
            "has a topics column)",
        ),
    ] = "all",
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same heads)")] = 13,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="where heads + model card go (default: bundled; topics: classifier.models_dir "
            "if configured)",
        ),
    ] = None,
    shared_data: Annotated[
        Path | None, typer.Option("--shared-data", help="the shared data folder")
    ] = None,
    no_builtin: Annotated[
        bool,
        typer.Option("--no-builtin-data", help="train only on --data files (and --from-store)"),
    ] = False,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="add the team's own labels from the store (careradar triage label); their "
            "held-out scores are reported on their own",
        ),
    ] = False,
    encoders: Annotated[
        str | None,
        typer.Option(
            "--encoders",
            help="comma-separated encoders to train heads for (default: e5-small,minilm; "
            "topics: the encoders the classifier routes to)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train the sentiment/complaint/urgency and topic heads; print held-out metrics; write a
    model card."""
    from pipeline.nlp.train import (
        TASKS,
        TOPICS_TASK,
        Example,
        TopicExample,
        has_head_labels,
        has_topic_labels,
        run_training_command,
        store_examples,
        store_topic_examples,
    )

    valid = [*TASKS, TOPICS_TASK, "all"]
    if task not in valid:
        raise ConfigError(
            f"unknown task {task!r}; valid values are: {', '.join(valid)}",
            hint="pass --task sentiment, complaint, urgency, topics or all",
        )
    files = data or []
    # Topic files (a `topics` column) train topics only; `all` includes topics only with them.
    topic_files: list[Path] = []
    if task == TOPICS_TASK:
        topic_files = files
    elif task == "all":
        topic_files = [f for f in files if has_topic_labels(f)]
    # A `labels export` file holds topics and head-task rows side by side: it feeds both.
    head_files = [
        f for f in files if f not in topic_files or (task == "all" and has_head_labels(f))
    ]
    tasks = list(TASKS) if task == "all" else [t for t in [task] if t in TASKS]
    encoder_list = [e.strip() for e in (encoders or "e5-small,minilm").split(",") if e.strip()]
    store_heads: dict[str, list[Example]] | None = None
    store_topics: list[TopicExample] = []
    topic_notes: list[str] = []
    if from_store:
        with _store_ctx() as store:
            records = list(store.iter_labels())
        store_heads = {t: store_examples(records, t) for t in tasks}
        if task in (TOPICS_TASK, "all"):
            store_topics, topic_notes = store_topic_examples(records, _configured_taxonomy()[0])
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:

        def progress(description: str, total: int) -> Any:
            tid = bar.add_task(escape(description), total=total)
            return lambda n: bar.advance(tid, n)

        summary: dict[str, Any] = {"out": None, "routes": {}, "reason": "", "reports": []}
        if tasks:
            summary = run_training_command(
                tasks=tasks,
                encoder_names=encoder_list,
                out=out,
                shared_data=None if no_builtin else shared_data,
                use_builtin=not no_builtin,
                files=head_files,
                seed=seed,
                progress=progress,
                store=store_heads,
            )
        topics = (
            _train_topics(
                topic_files,
                out,
                encoder_list if encoders else None,
                seed,
                progress,
                store_rows=store_topics,
                notes=topic_notes,
            )
            if topic_files or store_topics or task == TOPICS_TASK
            else None
        )
    if as_json:
        _json({**summary, "topics": topics} if topics else summary)
        return
    console = _console()  # `out` is the --out option here
    if topics:
        _print_topic_reports(console, topics)
    if not tasks:
        return
    table = Table(title="held-out metrics", title_justify="left")
    for col in ("task", "encoder", "train", "test", "accuracy", "macro-F1", "ECE"):
        table.add_column(col, justify="right" if col not in ("task", "encoder") else "left")
    for r in summary["reports"]:
        table.add_row(
            r["task"],
            r["encoder"],
            str(r["n_train"]),
            str(r["n_test"]),
            f"{r['overall']['accuracy']:.3f}",
            f"{r['overall']['macro_f1']:.3f}",
            f"{r['calibration'].get('ece_test', 0.0):.3f}",
        )
    console.print(table)
    if "store" in summary:
        _print_store_reports(console, summary)
    console.print(f"routing: {escape(summary['reason'] or 'unchanged (not all tasks trained)')}")
    console.print(f"heads and model card written to {escape(summary['out'])}")


def _print_store_reports(console: Console, summary: dict[str, Any]) -> None:
    """`train --from-store`: the held-out scores on the team's own labels, and what is thin."""
    table = Table(title="in-domain (your labels, held out)", title_justify="left")
    for col in ("task", "encoder", "train", "test", "weight", "accuracy", "macro-F1"):
        table.add_column(col, justify="right" if col not in ("task", "encoder") else "left")
    for r in summary["reports"]:
        own = r.get("store")
        if own is None:
            continue
        measured = own["n_test"] > 0
        table.add_row(
            r["task"],
            r["encoder"],
            str(own["n_train"]),
            str(own["n_test"]),
            f"{own['weight']:g}",
            f"{own['held_out']['accuracy']:.3f}" if measured else "-",
            f"{own['held_out']['macro_f1']:.3f}" if measured else "-",
        )
    console.print(table)
    labels = ", ".join(f"{t} {n}" for t, n in summary["store"]["labels"].items())
    console.print(f"labels in the store: {escape(labels)}")
    for note in summary["store"]["notes"]:
        console.print(f"note: {escape(note)}")


def _train_topics(
    files: list[Path],
    out: Path | None,
    encoder_names: list[str] | None,
    seed: int,
    progress: Any,
    *,
    store_rows: Sequence[Any] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """`train --task topics`: the configured taxonomy, heads for the encoders the classifier
    routes to, written to --out or the configured models_dir (where the classifier looks);
    ``store_rows`` are the store's topic labels (``--from-store``)."""
    from pipeline.nlp.encoders import BUILTIN_ENCODERS
    from pipeline.nlp.model import default_models_dir
    from pipeline.nlp.train import run_topics_command, topic_encoder_names

    cfg = state.cfg()
    c = cfg.classifier
    taxonomy, taxonomy_source = _configured_taxonomy()
    configured = cfg.resolve_path(c.models_dir) if c.models_dir else None
    target = out or configured or default_models_dir()
    notes = list(notes)
    if not encoder_names:
        encoder = c.encoder
        if encoder not in ("auto", *BUILTIN_ENCODERS) and cfg.resolve_path(encoder).exists():
            encoder = str(cfg.resolve_path(encoder))
        encoder_names, note = topic_encoder_names(
            target, encoder=encoder, quantize=c.quantize, e5_runtime=c.e5_runtime
        )
        notes += [note] if note else []
    return run_topics_command(
        files=files,
        taxonomy=taxonomy,
        taxonomy_source=taxonomy_source,
        out=target,
        encoder_names=encoder_names,
        seed=seed,
        progress=progress,
        notes=notes,
        store_rows=store_rows,
    )


def _print_topic_reports(console: Console, topics: dict[str, Any]) -> None:
    """Held-out per-topic P/R/F1 and micro/macro-F1, zero-shot and trained side by side."""
    for r in topics["reports"]:
        zs, tr = r["zero_shot"], r["trained_scores"]
        table = Table(
            title=f"topics, {escape(r['encoder'])}: held-out {r['n_test']} rows "
            f"(trained on {r['n_train']})",
            title_justify="left",
        )
        for col in ("topic", "train", "test", "zero-shot P/R/F1", "trained P/R/F1"):
            table.add_column(col, justify="left" if col == "topic" else "right")

        def prf(m: dict[str, Any], topic: str) -> str:
            if not m:
                return "-"
            return "{precision:.2f}/{recall:.2f}/{f1:.2f}".format(**m["per_topic"][topic])

        for t in r["topics"]:
            support = zs["per_topic"][t]["support"] if zs else 0
            table.add_row(
                escape(t), str(r["train_positives"][t]), str(support), prf(zs, t), prf(tr, t)
            )
        for key, label in (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("top1", "top-1")):
            table.add_row(
                label,
                "",
                "",
                f"{zs[key]:.3f}" if zs else "-",
                f"{tr[key]:.3f}" if tr else "-",
            )
        console.print(table)
        for note in r["notes"]:
            console.print(f"note: {escape(note)}")
        written = r["heads_file"] or "nothing (stays zero-shot)"
        console.print(f"topic heads written to {escape(written)}")
    console.print(f"scores appended to {escape(topics['model_card'])}")


@app.command("eval")
def eval_command(
    data: Annotated[Path, typer.Option("--data", help="labelled CSV/TSV/JSONL file")],
    text_col: Annotated[str, typer.Option("--text-col", help="column with the text")] = "text",
    label_col: Annotated[str, typer.Option("--label-col", help="column with the label")] = "label",
    task: Annotated[
        str, typer.Option("--task", help="sentiment|complaint|urgency|topics")
    ] = "sentiment",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score the configured classifier and the lexicon baseline on a labelled file."""
    from pipeline.nlp.evaluate import evaluate, read_eval_file
    from pipeline.nlp.lexicon import LexiconClassifier
    from pipeline.nlp.taxonomy import load_taxonomy

    cfg = state.cfg()
    rows = read_eval_file(data, task=task, text_col=text_col, label_col=label_col)
    kind = cfg.classifier.kind
    classifier = registry.build_classifier(cfg)
    path = cfg.resolve_path(cfg.classifier.taxonomy) if cfg.classifier.taxonomy else None
    taxonomy = load_taxonomy(path)
    classifiers = [classifier]
    if kind != "lexicon":
        classifiers.append(LexiconClassifier(taxonomy=taxonomy, products=cfg.classifier.products))
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=err,
        transient=True,
    ) as bar:
        tid = bar.add_task("classifying", total=len(rows) * len(classifiers))
        result = evaluate(
            data,
            task=task,
            text_col=text_col,
            label_col=label_col,
            classifiers=classifiers,
            progress=lambda n: bar.advance(tid, n),
            topic_names=[t.name for t in taxonomy],
        )
    if as_json:
        _json(result.to_json())
        return
    console = _console()
    names = list(result.results)
    summary = Table(title=f"{task} on {escape(str(data))} ({result.n} rows)", title_justify="left")
    summary.add_column("metric")
    for name in names:
        summary.add_column(escape(name), justify="right")
    summary.add_row("accuracy", *(f"{result.results[n]['accuracy']:.3f}" for n in names))
    summary.add_row("macro-F1", *(f"{result.results[n]['macro_f1']:.3f}" for n in names))
    labels = result.results[names[0]]["labels"]
    for label in labels:
        summary.add_row(
            f"{escape(label)} P/R/F1",
            *(
                "{precision:.2f}/{recall:.2f}/{f1:.2f}".format(
                    **result.results[n]["per_class"][label]
                )
                for n in names
            ),
        )
    console.print(summary)
    own = {
        n: result.results[n]["gold_labels_only"]
        for n in names
        if "gold_labels_only" in result.results[n]
    }
    if own:
        first = next(iter(own.values()))
        table = Table(
            title=f"choosing only among the file's labels ({escape(', '.join(first['labels']))})",
            title_justify="left",
        )
        table.add_column("metric")
        for name in own:
            table.add_column(escape(name), justify="right")
        table.add_row("accuracy", *(f"{m['accuracy']:.3f}" for m in own.values()))
        table.add_row("macro-F1", *(f"{m['macro_f1']:.3f}" for m in own.values()))
        console.print(table)
    for name in names:
        matrix = Table(
            title=f"confusion: {escape(name)} (rows gold, columns predicted)", title_justify="left"
        )
        matrix.add_column("gold \\ predicted")
        for label in labels:
            matrix.add_column(escape(label), justify="right")
        for label, row in zip(labels, result.results[name]["confusion"], strict=True):
            matrix.add_row(escape(label), *(str(v) for v in row))
        console.print(matrix)


@app.command()
def bench(
    rows: Annotated[int, typer.Option("--rows", min=1, help="items to generate")] = 5000,
    sqlite_only: Annotated[bool, typer.Option("--sqlite-only", help="skip PostgreSQL")] = False,
    nlp: Annotated[
        bool,
        typer.Option(
            "--nlp",
            help="the NLP benchmark instead: default classifier vs a naive transformers "
            "pipeline (benchmarks/nlp.py; needs a source checkout and ../shared/data)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Measure ingest and classification side by side with naive baselines (see docs)."""
    if nlp:
        _bench_nlp(rows, as_json)
        return
    from pipeline.bench import DATABASES, run_bench

    with err.status("benchmarking", spinner="dots") as status:
        report = run_bench(
            rows=rows,
            databases=("sqlite",) if sqlite_only else DATABASES,
            progress=lambda message: status.update(escape(message)),
        )
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        sys.stdout.write(report.to_markdown() + "\n")


def _bench_nlp(texts: int, as_json: bool) -> None:
    """Run ``benchmarks/nlp.py`` from the checkout this package was installed from."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "nlp.py"
    spec = importlib.util.spec_from_file_location("careradar_bench_nlp", script)
    if not script.is_file() or spec is None or spec.loader is None:
        raise NotFound(
            f"{script} not found: the NLP benchmark runs from a source checkout",
            hint="git clone the project, pip install -e '.[dev]', then careradar bench --nlp",
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with err.status("benchmarking the classifiers", spinner="dots") as status:
        report = module.run(
            texts, min(1_000, texts), progress=lambda m: status.update(escape(str(m)))
        )
    sys.stdout.write(json.dumps(report, indent=2) if as_json else module.to_markdown(report))
    sys.stdout.write("\n")


@app.command()
def classify(
    file: Annotated[
        Path | None,
        typer.Argument(help='texts, one per line, or JSONL with a "text" field (default: stdin)'),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input line")] = False,
) -> None:
    """Classify texts from a file or stdin with the configured classifier (streams; any size).

    Every input line gives one result, in order; an empty or undecodable line gives an object
    with an "error" field. Entities are shown with e-mail addresses and phone numbers redacted.
    """
    from pipeline.nlp.classify_io import classify_lines

    cfg = state.cfg()
    with err.status("loading the classifier", spinner="dots"):
        classifier = registry.build_classifier(cfg)
    chunk = max(cfg.classifier.batch_size * 4, 64)
    lines = errors = 0
    with _open_in(file) as stream:
        for results in classify_lines(stream, classifier, chunk_lines=chunk):
            if as_json:
                sys.stdout.write(
                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for _, r in results)
                )
                sys.stdout.flush()
            else:
                out.print(_classify_table(results, header=lines == 0))
            lines += len(results)
            errors += sum(1 for _, r in results if "error" in r)
    if not as_json:
        err.print(
            f"{lines} lines classified with {escape(classifier.version)}, {errors} errors "
            "(lang*: a language the model does not cover; classified anyway)"
        )


@contextmanager
def _open_in(path: Path | None) -> Iterator[BinaryIO]:
    if path is None or str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        fh = path.open("rb")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})", hint="check the path") from e
    with fh:
        yield fh


def _classify_table(results: Sequence[tuple[Any, dict[str, Any]]], *, header: bool) -> Table:
    table = Table(show_header=header, box=None, pad_edge=False)
    for name in ("line", "sentiment", "complaint", "urgency", "topics", "lang", "text"):
        table.add_column(name, no_wrap=name != "text")
    for line, r in results:
        if "error" in r:
            table.add_row(str(r["line"]), "[red]error[/]", "", "", "", "", escape(r["error"]))
            continue
        topics = " ".join(f"{k}:{v:.2f}" for k, v in r["topics"].items())
        lang = (r["language"] or "?") + ("" if r["language_supported"] else "*")
        table.add_row(
            str(r["line"]),
            r["sentiment"],
            "yes" if r["is_complaint"] else "",
            r["urgency"],
            escape(topics),
            escape(lang),
            escape(_snippet(line.text or "", 70)),
        )
    return table


# --- entry point ------------------------------------------------------------------------------


def _print_error(message: str, hint: str | None) -> None:
    lines = message.splitlines() or [message]
    err.print(f"[bold red]error:[/] {escape(lines[0])}")
    for extra in lines[1:]:
        err.print(f"       {escape(extra)}")
    if hint:
        err.print(f"  hint: {escape(hint)}")


def main(argv: Sequence[str] | None = None) -> None:
    t0 = time.perf_counter()
    try:
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except CareradarError as e:
        if state.debug:
            err.print_exception()
        _print_error(f"{e.message}", e.hint)
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show(file=sys.stderr)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:
        if state.debug:
            err.print_exception()
        _print_error(
            f"unexpected {type(e).__name__}: {e}",
            "run again with --debug for the traceback, and report it",
        )
        sys.exit(1)
    log.debug("done in %.2fs", time.perf_counter() - t0)
    sys.exit(code if isinstance(code, int) else 0)

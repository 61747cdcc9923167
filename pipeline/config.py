"""Configuration: YAML -> validated pydantic models.

Precedence, lowest first: built-in defaults < the YAML file < ``CARERADAR_*`` environment
variables < command-line flags. Secrets never live in the file: any string value may say
``${VAR}`` or ``${VAR:-default}`` and is read from the environment.

Every error names the file and the key path (``demo.yaml: sources[2].kind: ...``) and, where it
can, what to do. Kind-specific source keys are validated by the model each collector registers;
``load_config`` receives those models as an argument so this module imports nothing else from
the package.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError

ENV_CONFIG = "CARERADAR_CONFIG"
ENV_DATABASE_URL = "CARERADAR_DATABASE_URL"
DEFAULT_CONFIG_NAMES = ("careradar.yaml", "config/careradar.yaml")
DEFAULT_DATABASE_URL = "sqlite:///careradar.db"

CHANNELS = ("chat", "social", "email", "review", "forum")

# Response-time targets by channel. Chat, social and email are the product's promise; reviews
# get a week; forum threads are answered like email.
DEFAULT_TARGETS: dict[str, int] = {
    "chat": 120,
    "social": 3_600,
    "email": 86_400,
    "review": 7 * 86_400,
    "forum": 86_400,
}

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"2m"``, ``"1h30m"``, ``"7d"``. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 2m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts).lower() != text.lower():
                raise ValueError(f"'{value}' is not a duration; write it like 90s, 2m, 1h30m or 7d")
            seconds = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 90s, 2m, 1h or 7d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """``3600`` -> ``1h``; ``5400`` -> ``1h30m``; ``45`` -> ``45s``."""
    total = round(seconds)
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        n, total = divmod(total, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{value}'; use an IANA name such as Europe/Berlin"
        ) from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
"""An IANA zone name, checked when the config is loaded (not when the first item arrives)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Model):
    """When a source is collected: a fixed interval or a cron expression (UTC)."""

    every: Duration | None = Field(default=None, description="interval, e.g. 5m")
    cron: str | None = Field(default=None, description="crontab expression, e.g. '*/10 * * * *'")
    jitter: Duration = Field(default=0, description="random delay added to each run")

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if self.every is not None and self.cron is not None:
            raise ValueError("give either 'every' or 'cron', not both")
        if self.every is not None and self.every < 1:
            raise ValueError("'every' must be at least 1s")
        if self.cron is not None:
            if len(self.cron.split()) != 5:
                raise ValueError(
                    f"cron '{self.cron}' must have 5 fields (minute hour day month day-of-week)"
                )
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone="UTC")
            except ValueError as e:
                raise ValueError(f"cron '{self.cron}' is not valid: {e}") from None
        return self

    def describe(self, default_every: float = 300) -> str:
        if self.cron is not None:
            return f"cron '{self.cron}'"
        if self.every is None:
            return f"every {format_duration(default_every)} (default)"
        return f"every {format_duration(self.every)}"


class SourceConfig(_Model):
    """Keys every source has. Each collector kind extends this with its own keys."""

    name: str = Field(description="unique name, used in the CLI, the store and alerts")
    kind: str = Field(description="collector kind: file, feed, reddit, email, chat, reviews")
    channel: Literal["chat", "social", "email", "review", "forum"] | None = None
    brand: str | None = Field(default=None, description="brand this source is about")
    platform: str | None = Field(default=None, description="platform label, e.g. x, reddit")
    enabled: bool = True
    schedule: Schedule = Field(default_factory=Schedule)
    sla_policy: str | None = Field(default=None, description="override the channel's policy")
    batch_size: int = Field(default=200, ge=1, le=10_000)
    first_run_max_age: Duration | None = Field(
        default=7 * 86_400,
        description="on a source's first run, items older than this are stored for history but "
        "start no reply clock (null: every item gets one)",
    )
    silence_after: Duration | Literal["auto", "off"] = Field(
        default="auto",
        description="alert when no new item arrived for this long; 'auto' learns the source's "
        "normal gaps, 'off' never alerts",
    )

    @property
    def polled(self) -> bool:
        """Does the scheduler collect this source? Push-fed sources (a chat webhook without a
        transcript path) are stored as messages arrive and have nothing to poll."""
        return True

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}", v):
            raise ValueError(
                f"'{v}' is not a valid source name; use letters, digits, '-', '_' or '.'"
            )
        return v


class SlaPolicy(_Model):
    target: Duration = Field(description="time to first response")
    calendar: str | None = Field(
        default=None, description="count only the business hours of this sla.calendars entry"
    )
    at_risk: str = Field(
        default="75%",
        description="when an open item turns at-risk: a share of the target ('75%') "
        "or the time left before due ('10m')",
    )

    @field_validator("at_risk")
    @classmethod
    def _at_risk(cls, v: str) -> str:
        text = str(v).strip()
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 < share < 100:
                raise ValueError("a percentage at_risk must be between 0% and 100%")
        else:
            parse_duration(text)
        return text

    def at_risk_offset(self) -> float:
        """Seconds after the start at which the item becomes at-risk."""
        if self.at_risk.endswith("%"):
            return self.target * float(self.at_risk[:-1]) / 100
        return max(0.0, self.target - parse_duration(self.at_risk))


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ALIASES = {"daily": "mon-sun", "everyday": "mon-sun", "weekdays": "mon-fri"}
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _days(spec: str) -> list[int]:
    """'mon-fri' -> [0..4]; 'sat,sun' -> [5, 6]; 'daily' -> all (Monday is 0)."""
    out: list[int] = []
    for part in _DAY_ALIASES.get(spec.strip().lower(), spec.strip().lower()).split(","):
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in _WEEKDAYS for e in ends):
            raise ValueError(
                f"'{spec}' is not a day or day range; use e.g. mon-fri, sat, sun, daily"
            )
        a, b = _WEEKDAYS.index(ends[0]), _WEEKDAYS.index(ends[-1])
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return out


def _minutes(spec: str) -> tuple[int, int]:
    """'09:00-18:00' -> (540, 1080); '22:00-06:00' wraps past midnight -> (1320, 1800)."""
    m = _HOURS.match(spec)
    if not m:
        raise ValueError(f"'{spec}' is not a time range; use HH:MM-HH:MM, e.g. 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"'{spec}' has an impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end == start:
        raise ValueError(f"'{spec}' is empty; write 00:00-24:00 for a whole day")
    return (start, end if end > start else end + 24 * 60)


class Calendar(_Model):
    """Business hours in one time zone. An SLA policy with a calendar counts only open time.

    ``hours`` maps days to time ranges in local time: ``mon-fri: 09:00-18:00``,
    ``sat: [10:00-13:00, 14:00-16:00]``, ``sun: closed``; a range that ends before it starts
    runs past midnight. Days not listed are closed. ``holidays`` are closed dates.
    """

    timezone: TimeZoneName = Field(description="IANA zone, e.g. Asia/Kuala_Lumpur")
    hours: dict[str, str | list[str]] = Field(description="days -> HH:MM-HH:MM range(s)")
    holidays: list[date] = Field(default_factory=list, description="closed dates (YYYY-MM-DD)")

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        weekly = _weekly(v)
        if not any(weekly):
            raise ValueError("no open hours at all; an SLA on this calendar could never be due")
        return v

    def weekly(self) -> list[list[tuple[int, int]]]:
        """For each weekday (Monday first), the open minute ranges from that day's midnight."""
        return _weekly(self.hours)


def _weekly(hours: Mapping[str, str | list[str]]) -> list[list[tuple[int, int]]]:
    week: list[list[tuple[int, int]]] = [[] for _ in _WEEKDAYS]
    for days, ranges in hours.items():
        specs = [ranges] if isinstance(ranges, str) else list(ranges)
        for day in _days(days):
            for spec in specs:
                if spec.strip().lower() not in ("closed", "off", ""):
                    week[day].append(_minutes(spec))
    for day_ranges in week:
        day_ranges.sort()
    return week


def _default_policies() -> dict[str, SlaPolicy]:
    return {ch: SlaPolicy(target=t) for ch, t in DEFAULT_TARGETS.items()}


class SlaConfig(_Model):
    calendars: dict[str, Calendar] = Field(default_factory=dict)
    policies: dict[str, SlaPolicy] = Field(default_factory=_default_policies)
    channels: dict[str, str] = Field(
        default_factory=lambda: {ch: ch for ch in CHANNELS},
        description="which policy applies to each channel",
    )

    @model_validator(mode="before")
    @classmethod
    def _merge_defaults(cls, data: Any) -> Any:
        """A file that sets only ``policies.social`` keeps the defaults for the others."""
        if isinstance(data, dict):
            merged = dict(data)
            policies = {ch: {"target": t} for ch, t in DEFAULT_TARGETS.items()}
            policies.update(data.get("policies") or {})
            merged["policies"] = policies
            channels = {ch: ch for ch in CHANNELS}
            channels.update(data.get("channels") or {})
            merged["channels"] = channels
            return merged
        return data

    @model_validator(mode="after")
    def _known(self) -> SlaConfig:
        for channel, policy in self.channels.items():
            if channel not in CHANNELS:
                raise ValueError(
                    f"channels: unknown channel '{channel}'; valid values are: "
                    + ", ".join(CHANNELS)
                )
            if policy not in self.policies:
                raise ValueError(
                    f"channels.{channel}: unknown policy '{policy}'; defined policies are: "
                    + ", ".join(sorted(self.policies))
                )
        for name, p in self.policies.items():
            if p.calendar is not None and p.calendar not in self.calendars:
                raise ValueError(
                    f"policies.{name}.calendar: unknown calendar '{p.calendar}'; defined "
                    "calendars are: " + (", ".join(sorted(self.calendars)) or "(none)")
                )
        return self

    def policy_for(self, channel: str, override: str | None = None) -> tuple[str, SlaPolicy]:
        name = override or self.channels.get(channel, channel)
        return name, self.policies[name]


class DatabaseConfig(_Model):
    url: str = Field(default=DEFAULT_DATABASE_URL, description="SQLAlchemy URL")


class ClassifierConfig(_Model):
    kind: str = Field(default="model", description="registered classifier name")
    taxonomy: str | None = Field(default=None, description="topic taxonomy YAML; bundled default")
    products: list[str] = Field(default_factory=list, description="product names to tag")
    batch_size: int = Field(
        default=64,
        ge=1,
        le=4_096,
        description="texts per encoder forward pass, grouped by token count (the runner hands "
        "the classifier 16 batches' worth at a time)",
    )
    encoder: str = Field(
        default="auto",
        description="model classifier: 'auto' (route by language as trained), e5-small, minilm, "
        "minilm-int8, e5-small-bf16/-torch/-int8, or a local transformers model directory / "
        "cached hub id",
    )
    models_dir: str | None = Field(
        default=None, description="folder with trained heads (careradar train --out); bundled"
    )
    quantize: bool = Field(
        default=False,
        description="run MiniLM with dynamic int8 weights (measured: ~95% label agreement)",
    )
    e5_runtime: Literal["bf16", "fp32", "int8"] = Field(
        default="bf16",
        description="how e5-small runs on torch: bf16 (fast on CPUs with AMX or AVX512-BF16; "
        "fp32 on others), fp32, or int8 (faster on some CPUs, agrees on only ~95-97% of labels)",
    )
    sequence_model: str | None = Field(
        default=None,
        description="local transformers sequence-classification model (path or cached hub id) "
        "used for sentiment instead of the trained head",
    )


_SCOPED_ACCOUNT = re.compile(r"^([a-z][a-z0-9_.-]{0,30}):(?!//)(.+)$", re.IGNORECASE)


def _account_scope(account: str) -> tuple[str | None, str]:
    """'reddit:u/BrewistaCare' -> ('reddit', 'u/BrewistaCare'); 'help@x.com' -> (None, ...)."""
    m = _SCOPED_ACCOUNT.match(account.strip())
    return (m.group(1).casefold(), m.group(2)) if m else (None, account)


def account_key(handle: str) -> str:
    """One spelling per account: case-folded, without '@', 'u/' or '/u/' in front."""
    key = handle.strip().casefold()
    for prefix in ("/u/", "u/", "/user/", "user/", "@"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            break
    return key


class BrandConfig(_Model):
    name: str
    accounts: list[str] = Field(
        default_factory=list,
        description="handles / addresses the brand answers from; their posts count as replies; "
        "'platform:handle' limits one to that platform",
    )


class DedupeConfig(_Model):
    cross_post_window: Duration = Field(
        default=6 * 3_600,
        description="same text (ignoring links, mentions, case) within this window is one post",
    )


class SchedulerConfig(_Model):
    misfire_grace: Duration = Field(default=60, description="a run later than this is skipped")
    default_every: Duration = Field(default=300, description="interval for sources without one")


class HealthConfig(_Model):
    failures: int = Field(
        default=3, ge=1, le=1_000, description="consecutive failed runs before a source alerts"
    )


class AppConfig(_Model):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    brands: list[BrandConfig] = Field(default_factory=list)
    dedupe: DedupeConfig = Field(default_factory=DedupeConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    path: str | None = Field(default=None, exclude=True, description="file it was read from")
    base_dir: str = Field(default=".", exclude=True)

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        from pipeline.errors import NotFound

        known = ", ".join(s.name for s in self.sources) or "(none configured)"
        raise NotFound(f"no source named '{name}'", hint=f"configured sources: {known}")

    def resolve_path(self, value: str) -> Path:
        """Relative paths in a config file are relative to that file's directory."""
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else Path(self.base_dir) / p

    def brand_accounts(self, platform: str) -> frozenset[str]:
        """The brand's account keys (see ``account_key``) that count on ``platform``.

        An account written ``platform:handle`` (``reddit:BrewistaCare``, ``x:@BrewistaCare``)
        counts only there; an unprefixed one counts on every platform. Prefer the prefixed
        form where display names are not unique: anyone can call themselves "BrewistaCare".
        """
        wanted = platform.casefold()
        out = set()
        for brand in self.brands:
            for account in brand.accounts:
                scope, handle = _account_scope(account)
                if scope is None or scope == wanted:
                    out.add(account_key(handle))
        return frozenset(out)


# --- loading ----------------------------------------------------------------------------------

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _path_str(loc: Iterable[object]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _interpolate(
    value: Any, loc: tuple[object, ...], missing: list[tuple[tuple[object, ...], str]]
) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            var, default = m.group(1), m.group(2)
            found = os.environ.get(var)
            if found is not None and (found != "" or default is None):
                return found
            if default is not None:
                return default
            missing.append((loc, var))
            return ""

        return _VAR_RE.sub(repl, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, (*loc, k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*loc, i), missing) for i, v in enumerate(value)]
    return value


def _known_keys(model: type[BaseModel], loc: tuple[object, ...]) -> list[str]:
    """Field names valid at ``loc`` (the parent of an unknown key), for 'did you mean'."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        current = _unwrap_model(annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _unwrap_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


def _messages(
    exc: ValidationError, model: type[BaseModel], prefix: tuple[object, ...] = ()
) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = _path_str((*prefix, *loc))
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            known = _known_keys(model, loc[:-1])
            close = difflib.get_close_matches(key, known, n=1)
            msg = f"{where}: unknown key '{key}'"
            if close:
                msg += f" (did you mean '{close[0]}'?)"
            elif known:
                msg += f"; valid keys are: {', '.join(known)}"
        elif err["type"] == "missing":
            msg = f"{where}: required key is missing"
        else:
            text = str(err["msg"]).removeprefix("Value error, ")
            msg = f"{where}: {text}" if where else text
        out.append(msg)
    return out


def _raise(errors: list[str], label: str, hint: str | None = None) -> None:
    if not errors:
        return
    lines = [f"{label}: {e}" for e in errors]
    raise ConfigError(
        "\n".join(lines), hint=hint or "fix the key named above, then run: careradar config check"
    )


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """--config beats CARERADAR_CONFIG beats ./careradar.yaml; None when there is no file."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(
                f"{p}: config file not found", hint="check the path given to --config"
            )
        return p
    env = os.environ.get(ENV_CONFIG)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(
                f"{p}: config file not found (from {ENV_CONFIG})",
                hint=f"fix or unset {ENV_CONFIG}",
            )
        return p
    for name in DEFAULT_CONFIG_NAMES:
        p = Path(name)
        if p.is_file():
            return p
    return None


def load_config(
    path: str | os.PathLike[str] | None,
    source_models: Mapping[str, type[SourceConfig]] | None = None,
    *,
    database_url: str | None = None,
) -> AppConfig:
    """Read, interpolate and validate a config file (``None``: defaults, no sources).

    ``source_models`` maps collector kind -> its config model; with it every source is validated
    completely and an unknown kind lists the valid ones. ``database_url`` is the CLI override.
    """
    raw: dict[str, Any] = {}
    label = "defaults"
    base_dir = "."
    if path is not None:
        p = Path(path)
        label = str(p)
        base_dir = str(p.resolve().parent)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise ConfigError(f"{p}: config file not found", hint="check the path") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from e
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e)
            raise ConfigError(
                f"{p}:{where}: invalid YAML: {problem}",
                hint="check indentation and quoting near that line",
            ) from e
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"{p}: the top level must be a mapping of keys (database:, sources: ...)"
            )
        raw = loaded

    missing: list[tuple[tuple[object, ...], str]] = []
    raw = _interpolate(raw, (), missing)
    errors: list[str] = []
    sources_raw = raw.get("sources") or []
    for loc, var in missing:
        if loc and loc[0] == "sources" and len(loc) > 1 and isinstance(loc[1], int):
            src = sources_raw[loc[1]] if loc[1] < len(sources_raw) else {}
            if isinstance(src, dict) and src.get("enabled") is False:
                continue  # a disabled source may lack its secrets
        errors.append(f"{_path_str(loc)}: environment variable {var} is not set")
    if errors:
        _raise(errors, label, hint="export the variable, or give a default as ${VAR:-value}")

    if not isinstance(sources_raw, list):
        _raise(["sources: must be a list of sources"], label)
    env_url = os.environ.get(ENV_DATABASE_URL)
    if env_url or database_url:
        db = dict(raw.get("database") or {})
        db["url"] = database_url or env_url
        raw["database"] = db

    try:
        cfg = AppConfig.model_validate(
            {**raw, "sources": [], "path": label if path else None, "base_dir": base_dir}
        )
    except ValidationError as e:
        _raise(_messages(e, AppConfig), label)
        raise  # unreachable; keeps type checkers content

    sources: list[SourceConfig] = []
    seen: dict[str, int] = {}
    for i, src in enumerate(sources_raw):
        where = f"sources[{i}]"
        if not isinstance(src, dict):
            errors.append(f"{where}: must be a mapping with at least 'name' and 'kind'")
            continue
        kind = src.get("kind")
        model: type[SourceConfig] = SourceConfig
        if source_models is not None:
            if kind is None:
                errors.append(
                    f"{where}.kind: required key is missing; valid values are: "
                    + ", ".join(sorted(source_models))
                )
                continue
            if kind not in source_models:
                close = difflib.get_close_matches(str(kind), list(source_models), n=1)
                suggestion = f" (did you mean '{close[0]}'?)" if close else ""
                errors.append(
                    f"{where}.kind: unknown collector kind '{kind}'{suggestion}; "
                    f"valid values are: {', '.join(sorted(source_models))}"
                )
                continue
            model = source_models[kind]
        try:
            parsed = model.model_validate(src)
        except ValidationError as e:
            errors.extend(_messages(e, model, ("sources", i)))
            continue
        if parsed.name in seen:
            errors.append(
                f"{where}.name: '{parsed.name}' is already used by sources[{seen[parsed.name]}]; "
                "names must be unique"
            )
            continue
        seen[parsed.name] = i
        if parsed.sla_policy is not None and parsed.sla_policy not in cfg.sla.policies:
            errors.append(
                f"{where}.sla_policy: unknown policy '{parsed.sla_policy}'; defined policies are: "
                + ", ".join(sorted(cfg.sla.policies))
            )
            continue
        sources.append(parsed)
    _raise(errors, label)
    return cfg.model_copy(update={"sources": sources})


def sla_warnings(cfg: AppConfig) -> list[str]:
    """Things that validate but cannot work as intended, e.g. a poll slower than the promise."""
    out = []
    for s in cfg.sources:
        if not s.enabled or s.channel is None or not s.polled:
            continue
        name, policy = cfg.sla.policy_for(s.channel, s.sla_policy)
        if s.schedule.cron is not None:
            continue  # a cron's gaps vary; nothing simple to promise or warn about
        every = s.schedule.every if s.schedule.every is not None else cfg.scheduler.default_every
        when = s.schedule.describe(cfg.scheduler.default_every)
        if every >= policy.target:
            out.append(
                f"sources '{s.name}': polled {when} but the '{name}' target is "
                f"{format_duration(policy.target)}; items can be overdue before they are seen "
                "(poll more often, or use push intake)"
            )
        elif every >= policy.target - policy.at_risk_offset():
            out.append(
                f"sources '{s.name}': polled {when}, so items may first be seen "
                f"after they turned at-risk under '{name}' ({policy.at_risk})"
            )
    return out

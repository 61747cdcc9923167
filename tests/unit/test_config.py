"""Configuration: errors name file and key path; env interpolation; SLA defaults and warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import registry
from pipeline.config import format_duration, load_config, parse_duration, sla_warnings
from pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "prod.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def load(path: Path):
    return load_config(path, registry.source_models())


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("2m", 120),
        ("1h30m", 5400),
        ("7d", 604800),
        (45, 45),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "1x", "-5", "", "1h garbage"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration():
    assert format_duration(3600) == "1h"
    assert format_duration(5400) == "1h30m"
    assert format_duration(45) == "45s"


def test_defaults_without_file():
    cfg = load_config(None, registry.source_models())
    assert cfg.sources == []
    targets = {name: p.target for name, p in cfg.sla.policies.items()}
    assert targets["chat"] == 120
    assert targets["social"] == 3600
    assert targets["email"] == 86400
    assert targets["review"] == 7 * 86400


def test_unknown_kind_lists_valid_values(tmp_path):
    p = write(
        tmp_path,
        "sources:\n  - {name: a, kind: file, channel: social, path: x.jsonl}\n"
        "  - {name: b, kind: rss2, url: 'https://example.com/feed'}\n",
    )
    with pytest.raises(ConfigError) as e:
        load(p)
    msg = str(e.value)
    assert "prod.yaml: sources[1].kind: unknown collector kind 'rss2'" in msg
    assert "valid values are: " in msg and "file" in msg
    assert e.value.exit_code == 2


def test_missing_env_names_key_path_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("CR_TEST_SECRET", raising=False)
    p = write(tmp_path, "database:\n  url: postgresql+psycopg://u:${CR_TEST_SECRET}@h/db\n")
    with pytest.raises(ConfigError) as e:
        load(p)
    assert "database.url: environment variable CR_TEST_SECRET is not set" in str(e.value)
    assert e.value.hint and "export" in e.value.hint


def test_env_interpolation_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv("CR_TEST_DB", "sqlite:///from-env.db")
    p = write(
        tmp_path,
        "database: {url: '${CR_TEST_DB}'}\nclassifier: {kind: '${CR_TEST_UNSET_X:-lexicon}'}\n",
    )
    cfg = load(p)
    assert cfg.database.url == "sqlite:///from-env.db"
    assert cfg.classifier.kind == "lexicon"


def test_disabled_source_may_lack_its_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("CR_TEST_NOPE", raising=False)
    p = write(
        tmp_path,
        "sources:\n"
        "  - {name: a, kind: file, channel: social, path: '${CR_TEST_NOPE}', enabled: false}\n",
    )
    assert load(p).sources[0].enabled is False


def test_unknown_key_suggests_the_close_one(tmp_path):
    p = write(tmp_path, "sources:\n  - {name: a, kind: file, channel: social, pathh: x.jsonl}\n")
    with pytest.raises(ConfigError) as e:
        load(p)
    assert "sources[0].pathh: unknown key 'pathh' (did you mean 'path'?)" in str(e.value)


def test_every_error_is_reported_at_once(tmp_path):
    p = write(
        tmp_path,
        "sources:\n  - {name: a, kind: file, channel: socal, path: x}\n"
        "  - {name: a, kind: file, channel: social, path: y}\n"
        "  - {name: 'bad name!', kind: file, channel: chat, path: z}\n",
    )
    with pytest.raises(ConfigError) as e:
        load(p)
    lines = str(e.value).splitlines()
    assert any("sources[0].channel" in line for line in lines)
    assert any("sources[2].name" in line for line in lines)


def test_duplicate_source_names(tmp_path):
    p = write(
        tmp_path,
        "sources:\n  - {name: a, kind: file, channel: social, path: x}\n"
        "  - {name: a, kind: file, channel: chat, path: y}\n",
    )
    with pytest.raises(
        ConfigError, match=r"sources\[1\]\.name: 'a' is already used by sources\[0\]"
    ):
        load(p)


def test_invalid_yaml_names_line(tmp_path):
    p = write(tmp_path, "sources:\n  - name: a\n   kind: file\n")
    with pytest.raises(ConfigError, match=r"prod.yaml: line \d+, column \d+: invalid YAML"):
        load(p)


def test_partial_sla_override_keeps_defaults(tmp_path):
    p = write(tmp_path, "sla:\n  policies:\n    social: {target: 30m}\n    vip: {target: 10m}\n")
    cfg = load(p)
    assert cfg.sla.policies["social"].target == 1800
    assert cfg.sla.policies["chat"].target == 120
    assert cfg.sla.policy_for("social")[0] == "social"
    assert cfg.sla.policy_for("social", "vip")[1].target == 600


def test_unknown_sla_policy_on_source(tmp_path):
    p = write(
        tmp_path,
        "sources:\n  - {name: a, kind: file, channel: social, path: x, sla_policy: gold}\n",
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.sla_policy: unknown policy 'gold'"):
        load(p)


def test_at_risk_forms(tmp_path):
    p = write(
        tmp_path,
        "sla:\n  policies:\n    social: {target: 1h, at_risk: 15m}\n"
        "    chat: {target: 2m, at_risk: 50%}\n",
    )
    cfg = load(p)
    assert cfg.sla.policies["social"].at_risk_offset() == 2700
    assert cfg.sla.policies["chat"].at_risk_offset() == 60


def test_warns_when_poll_is_slower_than_target(tmp_path):
    p = write(
        tmp_path,
        "sources:\n  - {name: slow, kind: file, channel: social, path: x, schedule: {every: 2h}}\n"
        "  - {name: fine, kind: file, channel: email, path: y, schedule: {every: 5m}}\n",
    )
    warnings = sla_warnings(load(p))
    assert len(warnings) == 1
    assert "'slow'" in warnings[0] and "every 2h" in warnings[0] and "1h" in warnings[0]


def test_webhook_fed_chat_is_not_polled_nor_warned_about(tmp_path):
    p = write(
        tmp_path,
        "sources:\n  - {name: live, kind: chat, secret: s3cret}\n"
        "  - {name: logs, kind: chat, path: t.jsonl, schedule: {every: 10m}}\n",
    )
    cfg = load(p)
    assert [s.polled for s in cfg.sources] == [False, True]
    warnings = sla_warnings(cfg)
    assert len(warnings) == 1
    assert "'logs'" in warnings[0]


def test_env_overrides_database_url(tmp_path, monkeypatch):
    monkeypatch.setenv("CARERADAR_DATABASE_URL", "sqlite:///env.db")
    p = write(tmp_path, "database: {url: 'sqlite:///file.db'}\n")
    assert load(p).database.url == "sqlite:///env.db"
    assert (
        load_config(p, registry.source_models(), database_url="sqlite:///flag.db").database.url
        == "sqlite:///flag.db"
    )


def test_bundled_configs_are_valid():
    root = Path(__file__).resolve().parents[2] / "config"
    for name in ("demo.yaml", "example.yaml"):
        cfg = load(root / name)
        assert cfg.sources, name


def test_invalid_cron_is_a_config_error(tmp_path):
    p = write(
        tmp_path,
        "sources:\n"
        "  - {name: a, kind: file, channel: social, path: x, schedule: {cron: '*/70 * * * *'}}\n",
    )
    with pytest.raises(ConfigError, match=r"sources\[0\]\.schedule: cron '\*/70 \* \* \* \*'"):
        load(p)

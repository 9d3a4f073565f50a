"""Settings validation: each bad value names its variable, its value and the form expected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.common import config
from services.common.config import SettingError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in list(os.environ):
        if variable.startswith("ANTIFRAUD_"):
            monkeypatch.delenv(variable)


def error_of(monkeypatch: pytest.MonkeyPatch, **values: str) -> SettingError:
    for variable, value in values.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingError) as caught:
        config.check_environment()
    return caught.value


def test_defaults_and_case_insensitive_enumerations(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = config.check_environment()
    assert (settings.log_level, settings.log_format, settings.grace_seconds) == (
        "info",
        "auto",
        5.0,
    )
    monkeypatch.setenv("ANTIFRAUD_LOG_LEVEL", " WARNING ")
    monkeypatch.setenv("ANTIFRAUD_GRACE_SECONDS", "")  # empty is unset
    settings = config.check_environment()
    assert (settings.log_level, settings.grace_seconds) == ("warning", 5.0)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ANTIFRAUD_LOG_LEVEL", "verbose", "one of debug, info, warning, error, critical"),
        ("ANTIFRAUD_LOG_FORMAT", "xml", "one of auto, json, console"),
        ("ANTIFRAUD_GRACE_SECONDS", "abc", "a number of seconds, 0 to 3600"),
        ("ANTIFRAUD_GRACE_SECONDS", "inf", "a number of seconds, 0 to 3600"),
        ("ANTIFRAUD_DATABASE_URL", "sqlite:///x.db", config.DATABASE_FORM),
        ("ANTIFRAUD_REPORT_DATABASE_URL", "mysql://x", config.DATABASE_FORM),
        ("ANTIFRAUD_GATEWAY_ADDR", "localhost", config.ADDR_FORM),
        ("ANTIFRAUD_GATEWAY_ADDR", "[::1]:123456", config.ADDR_FORM),
        ("ANTIFRAUD_RISK_WORKERS", "0", "a whole number >= 1"),
        ("ANTIFRAUD_GATEWAY_WORKERS", "two", "a whole number >= 1"),
    ],
)
def test_a_bad_value_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    error = error_of(monkeypatch, **{variable: value})
    assert (error.variable, error.value, error.expected) == (variable, value, expected)
    assert str(error) == f"{variable}={value!r}: expected {expected}"


def test_good_addresses_and_urls_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in {
        "ANTIFRAUD_GATEWAY_ADDR": "0.0.0.0:50050",
        "ANTIFRAUD_RISK_ADDR": "[::]:0",
        "ANTIFRAUD_REPORT_ADDR": "report.svc:50053",
        "ANTIFRAUD_DATABASE_URL": "postgresql+asyncpg://u:p@db:5432/x",
        "ANTIFRAUD_RISK_DATABASE_URL": "sqlite+aiosqlite:///var/risk.db",
        "ANTIFRAUD_RISK_DB_SCHEMA": "antifraud_risk",
    }.items():
        monkeypatch.setenv(variable, value)
    config.check_environment()
    assert config.listen_addr("risk") == "[::]:0"
    assert config.database_url("risk") == "sqlite+aiosqlite:///var/risk.db"
    assert config.database_url("report").startswith("postgresql+asyncpg://")


def test_tls_files_must_exist_and_come_in_pairs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("-")
    missing = error_of(monkeypatch, ANTIFRAUD_TLS_CERT=str(tmp_path / "none.pem"))
    assert missing.variable == "ANTIFRAUD_TLS_CERT"
    assert "no readable file there" in missing.expected
    unpaired = error_of(monkeypatch, ANTIFRAUD_TLS_CERT=str(pem))
    assert unpaired.variable == "ANTIFRAUD_TLS_KEY"
    assert "since ANTIFRAUD_TLS_CERT is set" in unpaired.expected
    monkeypatch.setenv("ANTIFRAUD_TLS_KEY", str(pem))
    assert config.ServerSettings.from_env("risk").tls.enabled


def test_service_numbers_are_checked_on_read(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.env_float("RISK_POLL_SECONDS", 0.2) == 0.2
    monkeypatch.setenv("ANTIFRAUD_RISK_POLL_SECONDS", "nan")
    with pytest.raises(SettingError, match=r"ANTIFRAUD_RISK_POLL_SECONDS='nan': expected a number"):
        config.env_float("RISK_POLL_SECONDS", 0.2)
    monkeypatch.setenv("ANTIFRAUD_WARNING_MAX_ATTEMPTS", "-3")
    with pytest.raises(SettingError, match="a whole number >= 0"):
        config.env_int("WARNING_MAX_ATTEMPTS", 50)
    monkeypatch.setenv("ANTIFRAUD_WARNING_MAX_ATTEMPTS", "7")
    assert config.env_int("WARNING_MAX_ATTEMPTS", 50) == 7


def test_a_password_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    error = error_of(monkeypatch, ANTIFRAUD_DATABASE_URL="postgres://app:s3cret@db/x")
    assert error.value == "postgres://app:***@db/x"
    assert "s3cret" not in str(error)


def test_workers_default_to_the_cores_for_risk_and_the_gateway_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = os.cpu_count() or 1
    assert (config.workers("risk"), config.workers("gateway")) == (cores, cores)
    assert (config.workers("report"), config.workers("partners")) == (1, 1)
    monkeypatch.setenv("ANTIFRAUD_RISK_WORKERS", "3")
    monkeypatch.setenv("ANTIFRAUD_WARNING_WORKERS", "2")
    assert (config.workers("risk"), config.workers("warning")) == (3, 2)


def test_each_worker_serves_metrics_on_its_own_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.common.metrics import metrics_addr

    assert metrics_addr("risk", "127.0.0.1:50052") == "127.0.0.1:51052"
    assert metrics_addr("risk", "127.0.0.1:50052", worker=1) == "127.0.0.1:51052"
    assert metrics_addr("risk", "127.0.0.1:50052", worker=2) == "127.0.0.1:51152"
    monkeypatch.setenv("ANTIFRAUD_RISK_METRICS_ADDR", "0.0.0.0:9100")
    assert metrics_addr("risk", "127.0.0.1:50052", worker=3) == "0.0.0.0:9300"
    monkeypatch.setenv("ANTIFRAUD_RISK_METRICS_ADDR", "off")
    assert metrics_addr("risk", "127.0.0.1:50052", worker=2) is None

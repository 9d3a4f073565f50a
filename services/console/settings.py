"""The console's settings, read once at start from ``ANTIFRAUD_CONSOLE_*``."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.config import env_float, env_int, target


@dataclass(frozen=True)
class ConsoleSettings:
    #: Where the gateway is reached (``ANTIFRAUD_GATEWAY_TARGET``, else its listen address).
    gateway: str
    #: A session unused this long ends (``ANTIFRAUD_CONSOLE_IDLE_SECONDS``, 900).
    idle_seconds: float = 900.0
    #: A session ends this long after sign-in whatever its use
    #: (``ANTIFRAUD_CONSOLE_MAX_AGE_SECONDS``, 8 hours).
    max_age_seconds: float = 8 * 3600.0
    #: The deadline of each call to the gateway (``ANTIFRAUD_CONSOLE_CALL_SECONDS``, 10).
    call_seconds: float = 10.0
    #: How many reports the figures read at most (``ANTIFRAUD_CONSOLE_FIGURE_REPORTS``, 2000).
    figure_reports: int = 2000

    @classmethod
    def from_env(cls) -> ConsoleSettings:
        return cls(
            gateway=target("gateway"),
            idle_seconds=env_float("CONSOLE_IDLE_SECONDS", 900.0, minimum=1.0),
            max_age_seconds=env_float("CONSOLE_MAX_AGE_SECONDS", 8 * 3600.0, minimum=1.0),
            call_seconds=env_float("CONSOLE_CALL_SECONDS", 10.0, minimum=0.1),
            figure_reports=env_int("CONSOLE_FIGURE_REPORTS", 2000, minimum=50),
        )

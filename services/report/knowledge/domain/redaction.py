"""Removing personal details from a victim's account before it becomes a story: the shared
module :mod:`services.common.redaction` (free text is masked on the way in with it too)."""

from services.common.redaction import (
    PLACEHOLDER,
    Redacted,
    RedactionKind,
    known_patterns,
    leaks,
    redact,
    rounded_amount,
)

__all__ = [
    "PLACEHOLDER",
    "Redacted",
    "RedactionKind",
    "known_patterns",
    "leaks",
    "redact",
    "rounded_amount",
]

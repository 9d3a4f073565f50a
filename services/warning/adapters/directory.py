"""Which partner serves a number or an account: the partner directory, as the service uses it.

The directory (``services.partners.directory``) is the one source of routing and of
partner stubs; this adapter only narrows it to what warning dispatch asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from services.common.indicators import Indicator
from services.partners import directory
from services.partners.directory import PartnerClients


class PartnerDirectory:
    """Routing plus stubs; ``overrides`` maps partner names to addresses (tests)."""

    banks: tuple[str, ...] = directory.BANKS

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.clients = PartnerClients(overrides)

    def carrier_for(self, phone_number: str) -> str | None:
        """The carrier of an E.164 number; None when no partner carrier serves it."""
        return directory.carrier_of_e164(phone_number)

    def bank_for(self, account: Indicator) -> str | None:
        """The bank the directory names for an account; None when it names none."""
        return directory.bank_for_account(account)

    async def close(self) -> None:
        await self.clients.close()

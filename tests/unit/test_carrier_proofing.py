"""A carrier simulator's one-time codes (CAMARA OTP) and real-name match (CAMARA KYC Match)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from services.common import resident_id
from services.partners.domain.carrier import (
    CODE_ATTEMPTS,
    CODE_VALIDITY,
    Carrier,
    IdentityMatch,
    Line,
    OneTimeCodeResult,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PHONE = "+8613800138000"
OWNER = resident_id.with_check_character("11010519491231002")
OTHER = resident_id.with_check_character("11010519800101001")


def sent(carrier: Carrier, phone: str = PHONE) -> tuple[str, str]:
    """(authentication id, the code as the handset shows it)."""
    auth, submission = carrier.send_code(
        phone, "验证码{{code}}", sender="12381", now=NOW, delivery_delay=0, delivery_fails=False
    )
    assert submission.message is not None
    inbox = carrier.handset_messages(phone, NOW)
    found = re.search(r"验证码(\d{6})", inbox[0].text)
    assert found is not None
    assert inbox[0].sender == "12381"
    return auth, found.group(1)


def test_a_code_is_good_once_for_its_holder() -> None:
    carrier = Carrier("carrier-cmcc")
    auth, code = sent(carrier)
    assert carrier.validate_code(auth, code, NOW)[0] is OneTimeCodeResult.VALID
    # Used up: the same code again proves nothing.
    assert carrier.validate_code(auth, code, NOW)[0] is OneTimeCodeResult.INVALID


def test_wrong_tries_run_out_and_codes_expire() -> None:
    carrier = Carrier("carrier-cmcc")
    auth, code = sent(carrier)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    results = [carrier.validate_code(auth, wrong, NOW)[0] for _ in range(CODE_ATTEMPTS)]
    assert results[-1] is OneTimeCodeResult.ATTEMPTS_EXCEEDED
    # Out of tries, even the right code fails: guessing a 6-digit code is 3 tries, not 10^6.
    assert carrier.validate_code(auth, code, NOW)[0] is OneTimeCodeResult.ATTEMPTS_EXCEEDED
    auth, code = sent(carrier)
    late = NOW + CODE_VALIDITY
    assert carrier.validate_code(auth, code, late)[0] is OneTimeCodeResult.EXPIRED


def test_no_code_for_a_number_the_carrier_does_not_serve() -> None:
    carrier = Carrier("carrier-cmcc")
    auth, submission = carrier.send_code(
        "+8618600000000", "验证码{{code}}", sender="12381", now=NOW,
        delivery_delay=0, delivery_fails=False,
    )  # fmt: skip
    assert auth == ""
    assert submission.message is None


def test_the_real_name_match_says_yes_or_no_only() -> None:
    carrier = Carrier("carrier-cmcc")
    carrier.seed_subscriber(OWNER, [Line(PHONE, OWNER, NOW - timedelta(days=30))])
    assert carrier.match_identity(PHONE, OWNER) is IdentityMatch.MATCH
    assert carrier.match_identity(PHONE, OTHER) is IdentityMatch.NO_MATCH
    assert carrier.match_identity("+8618600000000", OWNER) is IdentityMatch.NOT_SUBSCRIBER
    # The number changes hands: the match follows the carrier's record.
    carrier.seed_subscriber(OTHER, [Line(PHONE, OTHER, NOW)])
    assert carrier.match_identity(PHONE, OWNER) is IdentityMatch.NO_MATCH
    assert carrier.match_identity(PHONE, OTHER) is IdentityMatch.MATCH


def test_an_unseeded_number_belongs_to_the_first_id_it_is_matched_with() -> None:
    carrier = Carrier("carrier-cmcc")
    phone = "+8613900000001"
    assert carrier.match_identity(phone, OWNER) is IdentityMatch.MATCH
    assert carrier.match_identity(phone, OTHER) is IdentityMatch.NO_MATCH
    # The 一证通查2.0 record agrees: only the owner's last six open the linked accounts.
    assert carrier.linked_accounts(phone, OTHER[-6:]) == []

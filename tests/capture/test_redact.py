from __future__ import annotations

import pytest

from agent.capture.redact import redact


@pytest.mark.parametrize(("text", "expected"), [
    ("write to jane.doe+tag@mail.example.co.uk today", "write to [EMAIL] today"),
    ("pay DE89 3704 0044 0532 0130 00 now", "pay [IBAN] now"),
    ("pay GB82WEST12345698765432.", "pay [IBAN]."),
    ("card 4111 1111 1111 1111 exp", "card [CARD] exp"),
    ("card 5500-0000-0000-0004", "card [CARD]"),
    ("host 10.0.0.12, v6 2001:db8::8a2e:370:7334 and ::1", "host [IP], v6 [IP] and [IP]"),
    ("call +1 (415) 555-2671 or 030 1234567 or 555-123-4567", "call [PHONE] or [PHONE] or [PHONE]"),
    ("ring +442071838750", "ring [PHONE]"),
])
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "on 2024-01-15 at 10:30:00 version 1.2.3",
    "order 4111 1111 1111 1112 fails the Luhn check",
    "GB00WEST12345698765432 fails mod 97",
    "between 1990 2000 there were 12345 cases",
    "999.1.1.1 is no address",
])
def test_numbers_that_are_not_personal_data_survive(text: str) -> None:
    assert redact(text) == text

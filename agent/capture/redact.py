"""Redaction of personal data in captured outputs: emails, IBANs, card numbers, IP addresses, phone
numbers. Errs towards redacting: a captured output exists only for drift investigation, where a
masked number costs nothing and a leaked one costs a lot. Card numbers need a valid Luhn digit and
IBANs a valid mod-97 checksum, so order numbers and hashes survive."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
                   r"(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\d.])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,8}){1,4}"
                    r"(?![\w])|(?<![\w+])\+\d{7,15}(?!\w)")
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    return "[IBAN]" if _iban_ok(match.group()) else match.group()


def _ipv6(match: re.Match[str]) -> str:
    try:
        ipaddress.IPv6Address(match.group())
    except ValueError:
        return match.group()
    return "[IP]"


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or _DATE.fullmatch(text):
        return text
    groups = len(re.findall(r"\d+", text))
    # Two bare groups ("1990 2000") are as often counts as numbers; a prefix or a third group is not.
    if text[0] in "+(0" or groups >= 3:
        return "[PHONE]"
    return text


_PASSES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_EMAIL, "[EMAIL]"),
    (_IBAN, _iban),
    (_CARD, _card),
    (_IPV6, _ipv6),
    (_IPV4, "[IP]"),
    (_PHONE, _phone),
)


def redact(text: str) -> str:
    """The text with personal data replaced by [EMAIL], [IBAN], [CARD], [IP] and [PHONE]."""
    for pattern, replacement in _PASSES:
        text = pattern.sub(replacement, text)
    return text

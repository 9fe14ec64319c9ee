"""Showing endpoints without their secrets.

Every place that names an endpoint (config errors, collector names, labels, logs, stored record
fields) renders it with `display_url`: the userinfo password and the values of secret-looking query
parameters become `***`. The raw URL stays inside the settings object and the client that dials it.
`scrub_text` applies the same to every URL inside free text (exception messages, log lines), and
`SecretScrubber` is the logging filter that does it to every line the process writes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"

_SECRET_PARAM = re.compile(r"token|key|pass|pwd|secret|auth|sig|credential|session", re.IGNORECASE)
"""Query parameter names whose values are treated as secrets (token=, api_key=, password=, sig=...)."""

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_QUERY_PARAM = re.compile(r"(?P<sep>[?&;])(?P<key>[^=&;#]*)=(?P<value>[^&;#]*)")


def display_url(raw: str) -> str:
    """`raw` with the userinfo password and secret query values replaced by ***. Never raises, and
    works on malformed input too (a bad port, no scheme), so error messages can use it."""
    text = str(raw)
    start = text.find("://")
    start = start + 3 if start >= 0 else 0
    # The authority ends at the first ? or # (a password may hold '/', as SQLAlchemy URLs allow);
    # the userinfo ends at the last '@' before that.
    end = len(text)
    for stop in ("?", "#"):
        at = text.find(stop, start)
        if at >= 0:
            end = min(end, at)
    at = text.rfind("@", start, end)
    if at >= 0:
        user, colon, _password = text[start:at].partition(":")
        if colon:
            text = f"{text[:start]}{user}:{MASK}{text[at:]}"
    query = text.find("?")
    if query >= 0:
        fragment = text.find("#", query)
        tail = text[fragment:] if fragment >= 0 else ""
        head = text[:query]
        params = text[query:fragment] if fragment >= 0 else text[query:]
        text = head + _QUERY_PARAM.sub(_mask_param, params) + tail
    return text


def _mask_param(match: re.Match[str]) -> str:
    if match["value"] and _SECRET_PARAM.search(match["key"]):
        return f"{match['sep']}{match['key']}={MASK}"
    return match.group(0)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text with every URL in it shown by `display_url` and every known secret replaced."""
    out = _URL_IN_TEXT.sub(_display_match, text) if "://" in text else text
    for secret in secrets:
        if secret and secret in out:
            out = out.replace(secret, MASK)
    return out


def _display_match(match: re.Match[str]) -> str:
    url = match.group(0)
    core = url.rstrip(").,;:]")  # sentence punctuation after a URL is not part of it
    return display_url(core) + url[len(core):]


def url_secrets(raw: str) -> list[str]:
    """The secret parts of a URL (its password and secret query values), for `SecretScrubber`."""
    shown = display_url(raw)
    if shown == raw:
        return []
    found: list[str] = []
    start = raw.find("://")
    start = start + 3 if start >= 0 else 0
    end = min((i for i in (raw.find("?", start), raw.find("#", start)) if i >= 0), default=len(raw))
    at = raw.rfind("@", start, end)
    if at >= 0:
        _user, colon, password = raw[start:at].partition(":")
        if colon and password:
            found.append(password)
    query = raw.find("?")
    if query >= 0:
        for match in _QUERY_PARAM.finditer(raw[query:]):
            if match["value"] and _SECRET_PARAM.search(match["key"]):
                found.append(match["value"])
    return found


class SecretScrubber(logging.Filter):
    """A handler filter: renders each record's message, masks URLs and the given secrets in it (and
    in its traceback), and hands the record on. Secrets shorter than 4 characters are not replaced
    (they would mask ordinary words)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return True
        clean = scrub_text(message, self.secrets)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text, self.secrets)
        return True

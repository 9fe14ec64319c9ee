"""Log lines of bounded length, whatever a remote party puts in them.

Messages can quote what a model server or a client sent (a family name, a parse error echoing a
page line); one hostile page once made a 19.5 MB log line. Every record of campwatch's own loggers
(`agent.*`) is capped when it is created, so every handler (and pytest's caplog) sees the capped
text; `LineCap` does the same as a handler filter for other libraries' records (installed by the CLI)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

MESSAGE_CHARS_MAX = 2000
"""A log message is cut to this many characters, then a marker saying how long it was."""
EXCEPTION_CHARS_MAX = 10_000
"""A formatted traceback is cut to this many characters (its last line quotes the exception message)."""


def cap_text(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a marker giving its full length; unchanged when shorter."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [log line truncated: {len(text)} chars]"


def cap_record(record: logging.LogRecord, limit: int = MESSAGE_CHARS_MAX) -> None:
    """Cap the record's message (formatted once, in place) and its exception text."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to logging's own error report
        return
    if len(message) > limit:
        record.msg, record.args = cap_text(message, limit), None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = cap_text(exc_text, EXCEPTION_CHARS_MAX)


class LineCap(logging.Filter):
    """A handler filter capping every record that passes (see cap_record)."""

    def __init__(self, limit: int = MESSAGE_CHARS_MAX) -> None:
        super().__init__()
        self.limit = limit

    def filter(self, record: logging.LogRecord) -> bool:
        cap_record(record, self.limit)
        return True


_installed = False


def install_library_cap() -> None:
    """Cap every record of the `agent` loggers at creation (wraps the current record factory once;
    other loggers' records are untouched)."""
    global _installed
    if _installed:
        return
    _installed = True
    make: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if record.name == "agent" or record.name.startswith("agent."):
            cap_record(record)
        return record

    logging.setLogRecordFactory(factory)

"""Reading a JSON object from bytes that may be anything (a client's body, an upstream event)."""

from __future__ import annotations

import json
from typing import Any


def json_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object `raw` holds, or None when it holds anything else or nothing parseable (never raises)."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None

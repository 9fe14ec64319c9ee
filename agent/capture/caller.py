"""Caller labels: a salted hash of the API key, so per-caller cost and drift can be grouped without
the key (or anything that can be turned back into it) ever being stored."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from multidict import CIMultiDictProxy

from agent.config import DEFAULT_DB_PATH, CaptureSettings

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
DEFAULT_SALT_PATH = DEFAULT_DB_PATH.parent / "caller-salt"
LABEL_HEX_CHARS = 16


def api_key(headers: CIMultiDictProxy[str]) -> str | None:
    """The bearer token of Authorization, else an `api-key` header (Azure-style clients)."""
    auth = headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = headers.get("api-key", "").strip()
    return key or None


def caller_label(key: str | None, salt: bytes) -> str:
    """16 hex chars of HMAC-SHA256(salt, key); "anonymous" without a key."""
    if not key:
        return ANONYMOUS
    return hmac.new(salt, key.encode(), hashlib.sha256).hexdigest()[:LABEL_HEX_CHARS]


class CallerLabels:
    """caller_label with a bounded memo: a deployment has few keys, and each request would
    otherwise pay for an HMAC. The memo holds keys in memory only, never anywhere else."""

    def __init__(self, salt: bytes, capacity: int = 4096) -> None:
        self._salt = salt
        self._capacity = capacity
        self._memo: dict[str, str] = {}

    def __call__(self, key: str | None) -> str:
        if not key:
            return ANONYMOUS
        label = self._memo.get(key)
        if label is None:
            if len(self._memo) >= self._capacity:
                self._memo.clear()
            label = self._memo[key] = caller_label(key, self._salt)
        return label


def load_or_create_salt(path: Path) -> bytes:
    """Read the salt file, creating it (mode 0600, 32 random bytes as hex) on first use. If the file
    cannot be written, a per-process salt is used and labels change at restart (logged)."""
    try:
        salt = bytes.fromhex(path.read_text(encoding="ascii").strip())
        if len(salt) < 16:
            raise ValueError(f"expected at least 32 hex characters, got {len(salt) * 2}")
        return salt
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("caller salt file %s is unreadable (%s); using a per-process salt", path, exc)
        return secrets.token_bytes(32)
    salt = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return load_or_create_salt(path)
    except OSError as exc:
        log.warning("cannot create caller salt file %s (%s); using a per-process salt, so caller "
                    "labels change at restart (set capture.caller_salt to avoid this)", path, exc)
        return salt
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(salt.hex() + "\n")
    return salt


def resolve_salt(capture: CaptureSettings) -> bytes:
    configured = capture.caller_salt.get_secret_value()
    if configured:
        return configured.encode()
    return load_or_create_salt(Path(capture.caller_salt_file).expanduser() if capture.caller_salt_file
                               else DEFAULT_SALT_PATH)

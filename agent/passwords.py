"""Password hashes for /metrics basic auth: scrypt from the standard library, in one text form,
`scrypt$N$r$p$<salt, base64>$<hash, base64>`. `campwatch hash-password` makes one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

PREFIX = "scrypt"
DEFAULT_N, DEFAULT_R, DEFAULT_P = 1 << 14, 8, 1  # 16 MiB and ~50 ms per check: slow to brute-force
_MAX_N = 1 << 20
_HASH_BYTES = 32


@dataclass(frozen=True)
class PasswordHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    salt = os.urandom(16)
    digest = _derive(password, PasswordHash(n, r, p, salt, b""))
    return "$".join((PREFIX, str(n), str(r), str(p), _b64(salt), _b64(digest)))


def parse_hash(text: str) -> PasswordHash:
    """Raises ValueError saying what was expected (never echoing the text: it is a secret)."""
    parts = text.split("$")
    expected = "expected a hash made by `campwatch hash-password` (scrypt$N$r$p$salt$hash)"
    if len(parts) != 6 or parts[0] != PREFIX:
        raise ValueError(expected)
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError(expected) from None
    if n < 2 or n > _MAX_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16 or not salt or not digest:
        raise ValueError(f"{expected}, with N a power of two up to {_MAX_N}, r 1-32, p 1-16")
    return PasswordHash(n, r, p, salt, digest)


def verify_password(password: str, stored: PasswordHash) -> bool:
    """Constant-time comparison of the derived hash."""
    return hmac.compare_digest(_derive(password, stored, size=len(stored.digest)), stored.digest)


def _derive(password: str, spec: PasswordHash, size: int = _HASH_BYTES) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=spec.salt, n=spec.n, r=spec.r, p=spec.p,
                          maxmem=256 * spec.r * spec.n + (1 << 20), dklen=size)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")

"""Optional auth and TLS for /metrics and /healthz, in the spirit of Prometheus exporter-toolkit's
web config: basic auth against scrypt hashes, a bearer token read from a file, HTTPS from PEM files.

A request passes with either credential when both are configured; otherwise it gets 401 with a
WWW-Authenticate challenge. Comparisons are constant-time; a password check (~50 ms of scrypt) runs
off the event loop, and a pair already verified is remembered (as a hash) so scrapes stay cheap."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from multidict import CIMultiDict

from agent.config import MetricsSettings
from agent.errors import ConfigError, Problem
from agent.passwords import PasswordHash, hash_password, parse_hash, verify_password

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REALM = 'realm="campwatch"'
_VERIFIED_MAX = 64


def _read_token(path: str) -> bytes:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError("metrics settings", [Problem("metrics.bearer_token_file",
                                                       f"cannot read {path}: {reason}")]) from None
    if not token:
        raise ConfigError("metrics settings", [Problem("metrics.bearer_token_file",
                                                       f"{path} is empty; expected a token")])
    return token.encode("utf-8")


class MetricsAuth:
    """The aiohttp middleware; build it with `metrics_auth(settings)`."""

    def __init__(self, users: dict[str, PasswordHash], token: bytes | None) -> None:
        self._users = users
        self._token = token
        self._dummy = parse_hash(hash_password("campwatch-dummy", n=users[next(iter(users))].n)) if users else None
        self._verified: dict[bytes, None] = {}
        self._challenge: CIMultiDict[str] = CIMultiDict()
        if users:
            self._challenge.add("WWW-Authenticate", f"Basic {_REALM}, charset=\"UTF-8\"")
        if token is not None:
            self._challenge.add("WWW-Authenticate", f"Bearer {_REALM}")

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if await self._authorized(request.headers.get("Authorization", "")):
            return await handler(request)
        return web.Response(status=401, text="401 Unauthorized: credentials required\n",
                            headers=self._challenge.copy())

    async def _authorized(self, header: str) -> bool:
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer" and self._token is not None:
            return hmac.compare_digest(value.encode("utf-8", "surrogateescape"), self._token)
        if scheme == "basic" and self._users:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, colon, password = decoded.partition(":")
            if not colon:
                return False
            return await self._check(user, password)
        return False

    async def _check(self, user: str, password: str) -> bool:
        stored = self._users.get(user)
        key = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        if stored is not None and key in self._verified:
            return True
        # An unknown user costs the same scrypt as a known one, so timing does not tell users apart.
        ok = await asyncio.to_thread(verify_password, password, stored or self._dummy)  # type: ignore[arg-type]
        if ok and stored is not None:
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.pop(next(iter(self._verified)))
            self._verified[key] = None
            return True
        return False


def metrics_auth(settings: MetricsSettings) -> MetricsAuth | None:
    """None when neither basic auth nor a bearer token is configured. Raises ConfigError."""
    users = {user: parse_hash(h.get_secret_value()) for user, h in settings.basic_auth_users.items()}
    token = _read_token(settings.bearer_token_file) if settings.bearer_token_file else None
    if not users and token is None:
        return None
    return MetricsAuth(users, token)


def tls_context(settings: MetricsSettings) -> ssl.SSLContext | None:
    """A server context from tls_cert_file/tls_key_file (TLS 1.2+), None without them. Raises ConfigError."""
    if not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError("metrics settings", [Problem("metrics.tls_cert_file / metrics.tls_key_file",
                                                       f"cannot load {settings.tls_cert_file} with "
                                                       f"{settings.tls_key_file}: {reason}; expected a PEM "
                                                       "certificate and its private key")]) from None
    return context

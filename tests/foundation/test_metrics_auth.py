"""/metrics and /healthz behind optional basic auth (scrypt hashes), a bearer token file and TLS,
as Prometheus exporter-toolkit's web config does."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from agent.catalog import CATALOG
from agent.cli import main
from agent.config import MetricsSettings, load_settings
from agent.errors import ConfigError
from agent.exporters.prometheus import build_registry
from agent.exporters.snapshot import Snapshot
from agent.exporters.web_auth import metrics_auth, tls_context
from agent.passwords import hash_password, parse_hash, verify_password
from agent.runner import Runner
from agent.store.db import open_engine
from agent.store.writer import StoreWriter
from agent.telemetry import Telemetry

FAST = {"n": 16, "r": 1, "p": 1}  # the test's hashes are cheap; the default is 2^14 (~50 ms)


async def _serve(tmp_path: Path, settings: MetricsSettings) -> AsyncIterator[int]:
    engine = open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    telemetry = Telemetry("h1")
    snapshot = Snapshot()
    runner = Runner(collectors=[], writer=StoreWriter(engine, telemetry),
                    snapshot=snapshot, telemetry=telemetry, registry=build_registry(snapshot, CATALOG), metrics_port=0,
                    metrics_auth=metrics_auth(settings), metrics_tls=tls_context(settings), shutdown_grace_s=2)
    task = asyncio.create_task(runner.run())
    while runner.metrics_bound_port is None:
        await asyncio.sleep(0.01)
    yield runner.metrics_bound_port
    runner.stop()
    await task


@pytest.fixture
async def basic(tmp_path: Path) -> AsyncIterator[int]:
    settings = MetricsSettings(basic_auth_users={"prom": SecretStr(hash_password("s3cret-pass", **FAST))})
    async for port in _serve(tmp_path, settings):
        yield port


async def _get(url: str, **kwargs: object) -> tuple[int, str, list[str]]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as resp:  # type: ignore[arg-type]
        return resp.status, await resp.text(), resp.headers.getall("WWW-Authenticate", [])


async def test_basic_auth_answers_401_with_a_challenge_and_200_to_the_right_password(basic: int) -> None:
    base = f"http://127.0.0.1:{basic}"
    status, _, challenge = await _get(f"{base}/metrics")
    assert status == 401 and challenge == ['Basic realm="campwatch", charset="UTF-8"']
    status, _, _ = await _get(f"{base}/metrics", auth=aiohttp.BasicAuth("prom", "wrong"))
    assert status == 401
    status, _, _ = await _get(f"{base}/metrics", auth=aiohttp.BasicAuth("nobody", "s3cret-pass"))
    assert status == 401
    for path in ("/metrics", "/healthz"):
        for _ in range(2):  # the second time from the verified cache
            status, body, _ = await _get(base + path, auth=aiohttp.BasicAuth("prom", "s3cret-pass"))
            assert status == 200
    assert "campwatch_agent_info" in body or '"status"' in body


async def test_a_bearer_token_from_its_file_is_accepted_and_any_other_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123456\n")
    async for port in _serve(tmp_path, MetricsSettings(bearer_token_file=str(token))):
        url = f"http://127.0.0.1:{port}/healthz"
        status, _, challenge = await _get(url, headers={"Authorization": "Bearer tok-999999"})
        assert status == 401 and challenge == ['Bearer realm="campwatch"']
        status, body, _ = await _get(url, headers={"Authorization": "Bearer tok-123456"})
        assert status == 200 and '"status"' in body


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


async def test_tls_serves_https_with_the_configured_certificate_and_refuses_plain_http(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    async for port in _serve(tmp_path, MetricsSettings(tls_cert_file=str(cert), tls_key_file=str(key))):
        status, body, _ = await _get(f"https://127.0.0.1:{port}/metrics", ssl=trust)
        assert status == 200 and "campwatch_agent_info" in body
        with pytest.raises(aiohttp.ClientError):
            await _get(f"http://127.0.0.1:{port}/metrics")


def test_a_bad_hash_or_half_a_tls_pair_is_a_config_error_that_does_not_echo_the_hash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"CAMPWATCH_METRICS__BASIC_AUTH_USERS": '{"prom": "plain-S3cr3tMarker"}'})
    assert "metrics.basic_auth_users" in str(caught.value) and "hash-password" in str(caught.value)
    assert "S3cr3tMarker" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"CAMPWATCH_METRICS__TLS_CERT_FILE": str(tmp_path)})
    assert "tls_cert_file and tls_key_file go together" in str(caught.value)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        tls_context(MetricsSettings(tls_cert_file=str(bad), tls_key_file=str(bad)))
    assert "metrics.tls_cert_file / metrics.tls_key_file" in str(caught.value)


def test_hash_password_prints_a_hash_that_verifies_and_no_password() -> None:
    result = CliRunner().invoke(main, ["hash-password", "--stdin"], input="correct horse\n")
    assert result.exit_code == 0, result.output
    line = result.output.strip()
    assert line.startswith("scrypt$16384$8$1$") and "correct horse" not in line
    assert verify_password("correct horse", parse_hash(line)) and not verify_password("wrong", parse_hash(line))

from __future__ import annotations

import logging

import pytest

from agent.urls import SecretScrubber, display_url, scrub_text, url_secrets


@pytest.mark.parametrize(("raw", "shown"), [
    ("http://user:S3cr3t@host:8000/metrics", "http://user:***@host:8000/metrics"),
    ("postgresql+psycopg://svc:p@ss/w:rd@db.internal:5432/cw", "postgresql+psycopg://svc:***@db.internal:5432/cw"),
    ("http://user:S3cr3t@host:notaport/x", "http://user:***@host:notaport/x"),
    ("ftp://user:S3cr3t@host", "ftp://user:***@host"),
    ("user:S3cr3t@host:5432/db", "user:***@host:5432/db"),
    ("http://host/v1/metrics?token=S3cr3t&a=1", "http://host/v1/metrics?token=***&a=1"),
    ("http://host/x?api_key=S3cr3t;Password=S3cr3t#frag", "http://host/x?api_key=***;Password=***#frag"),
    ("http://user@host:8000/metrics", "http://user@host:8000/metrics"),
    ("http://127.0.0.1:8000/metrics?window=5m", "http://127.0.0.1:8000/metrics?window=5m"),
    ("sqlite:////var/lib/campwatch.db", "sqlite:////var/lib/campwatch.db"),
    ("", ""),
])
def test_display_url_hides_the_password_and_secret_query_values_and_keeps_the_rest(raw: str, shown: str) -> None:
    assert display_url(raw) == shown


def test_url_secrets_lists_exactly_the_hidden_parts() -> None:
    assert url_secrets("http://u:pw1234@h/x?token=tok5678&a=1") == ["pw1234", "tok5678"]
    assert url_secrets("http://h:8000/metrics") == []


def test_scrub_text_masks_every_url_in_a_message_and_every_known_secret() -> None:
    text = "cannot reach http://proxy:S3cr3t@up:8000 (via https://h/?key=K3y) token abcd1234"
    assert scrub_text(text, ["abcd1234"]) == "cannot reach http://proxy:***@up:8000 (via https://h/?key=***) token ***"


def test_the_log_filter_masks_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.scrubber")
    scrubber = SecretScrubber(["S3cr3tMarker"])
    caplog.handler.addFilter(scrubber)
    try:
        with caplog.at_level(logging.INFO, logger="test.scrubber"):
            logger.info("forwarding to %s", "http://proxy:S3cr3tMarker@up:8000")
            try:
                raise RuntimeError("header Bearer S3cr3tMarker refused")
            except RuntimeError:
                logger.exception("export failed")
    finally:
        caplog.handler.removeFilter(scrubber)
    assert caplog.records[0].getMessage() == "forwarding to http://proxy:***@up:8000"
    assert "S3cr3tMarker" not in caplog.text and "Bearer ***" in caplog.text

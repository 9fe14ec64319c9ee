"""Log lines are bounded whatever a model server or a client puts in them (issue 9, finding 6)."""

from __future__ import annotations

import io
import logging

import pytest

from agent.loglimit import EXCEPTION_CHARS_MAX, MESSAGE_CHARS_MAX, LineCap, cap_text


def test_an_agent_log_message_is_cut_to_the_cap_with_a_marker_giving_its_length(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="agent"):
        logging.getLogger("agent.collectors.engine.collector").info("families: %s", "x" * 19_500_000)
    (record,) = caplog.records
    message = record.getMessage()
    assert message == "families: " + "x" * (MESSAGE_CHARS_MAX - 10) + "... [log line truncated: 19500010 chars]"
    assert len(caplog.text) < MESSAGE_CHARS_MAX + 200


def test_an_exception_message_in_a_traceback_is_capped_too(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="agent"):
        try:
            raise ValueError("Invalid line: " + "y" * 1_000_000)
        except ValueError:
            logging.getLogger("agent.runner").exception("collector crashed")
    (record,) = caplog.records
    assert record.exc_text is not None and len(record.exc_text) < EXCEPTION_CHARS_MAX + 100
    assert record.exc_text.endswith("chars]")
    assert len(caplog.text) < EXCEPTION_CHARS_MAX + 500


def test_short_messages_and_other_libraries_records_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("agent.x").info("short %d", 1)
        logging.getLogger("aiohttp.server").info("%s", "z" * 5000)
    assert [r.getMessage() for r in caplog.records] == ["short 1", "z" * 5000]


def test_the_handler_filter_caps_any_logger_the_cli_handler_sees() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(LineCap())
    logger = logging.getLogger("aiohttp.server.test-cap")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("Error handling request %s", "b" * 100_000)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert len(line) < MESSAGE_CHARS_MAX + 100 and "[log line truncated: 100023 chars]" in line


def test_cap_text_keeps_text_within_the_limit_unchanged() -> None:
    assert cap_text("abc", 3) == "abc"
    assert cap_text("abcd", 3) == "abc... [log line truncated: 4 chars]"


def test_the_cli_logging_setup_caps_every_handler_it_configures() -> None:
    from agent.cli import _logging

    root = logging.getLogger()
    before = list(root.handlers)
    _logging("INFO")
    try:
        assert root.handlers and all(any(isinstance(f, LineCap) for f in h.filters) for h in root.handlers)
    finally:
        for handler in root.handlers:
            for f in [f for f in handler.filters if isinstance(f, LineCap)]:
                handler.removeFilter(f)
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)

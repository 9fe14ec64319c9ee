from __future__ import annotations

from agent.capture.descriptors import describe_output
from agent.config import CaptureSettings

PHRASES = CaptureSettings().refusal_phrases


def test_refusal_phrases_match_at_the_start_with_either_apostrophe() -> None:
    assert describe_output("I\u2019m sorry, but I can\u2019t help with that.", refusal_phrases=PHRASES,
                           json_requested=False).refusal
    long_essay = "Here is the essay. " * 40 + "As an AI researcher once said..."
    assert not describe_output(long_essay, refusal_phrases=PHRASES, json_requested=False).refusal


def test_the_refusal_member_counts_even_without_a_phrase() -> None:
    assert describe_output("", refusal_phrases=(), json_requested=False, refusal_field=True).refusal


def test_json_validity_is_reported_only_when_json_was_asked_for() -> None:
    assert describe_output('{"a": 1}', refusal_phrases=(), json_requested=True).json_valid is True
    assert describe_output('```json\n{"a": 1}\n```', refusal_phrases=(), json_requested=True).json_valid is True
    assert describe_output('{"a": ', refusal_phrases=(), json_requested=True).json_valid is False
    assert describe_output('{"a": 1}', refusal_phrases=(), json_requested=False).json_valid is None
    assert describe_output('{"a": 1}', refusal_phrases=(), json_requested=True, complete=False).json_valid is None


def test_characters_and_non_ascii_share() -> None:
    described = describe_output("h\u00e9llo \u4e16\u754c", refusal_phrases=(), json_requested=False)
    assert described.output_chars == 8
    assert described.non_ascii_ratio == 3 / 8
    assert describe_output("", refusal_phrases=(), json_requested=False).non_ascii_ratio is None

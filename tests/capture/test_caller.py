from __future__ import annotations

import stat
from pathlib import Path

from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import SecretStr

from agent.capture.caller import ANONYMOUS, api_key, caller_label, load_or_create_salt, resolve_salt
from agent.config import CaptureSettings


def _headers(**pairs: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in pairs.items()}))


def test_the_label_is_a_short_salted_hash_that_never_contains_the_key() -> None:
    key = "sk-live-0123456789abcdef"
    label = caller_label(key, b"salt")
    assert len(label) == 16 and int(label, 16) >= 0
    assert key not in label and label != caller_label(key, b"other-salt")
    assert label == caller_label(key, b"salt")


def test_the_key_comes_from_a_bearer_token_or_an_api_key_header() -> None:
    assert api_key(_headers(Authorization="Bearer sk-1")) == "sk-1"
    assert api_key(_headers(api_key="az-2")) == "az-2"
    assert api_key(_headers(Authorization="Basic dXNlcg==")) is None
    assert caller_label(api_key(_headers()), b"s") == ANONYMOUS


def test_the_per_install_salt_is_created_private_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "caller-salt"
    first = load_or_create_salt(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_salt(path) == first


def test_an_unwritable_salt_location_falls_back_to_a_process_salt(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert len(load_or_create_salt(blocker / "caller-salt")) == 32


def test_a_configured_salt_wins_over_the_file(tmp_path: Path) -> None:
    capture = CaptureSettings(caller_salt=SecretStr("fleet"), caller_salt_file=str(tmp_path / "s"))
    assert resolve_salt(capture) == b"fleet"
    assert not (tmp_path / "s").exists()

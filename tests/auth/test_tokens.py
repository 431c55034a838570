"""A token's verdict, verified once and then remembered (auth/tokens.read_token)."""

from __future__ import annotations

import time

import jwt
import pytest

from azora_nexus.auth import tokens
from azora_nexus.auth.tokens import ALGORITHM, Principal, Role, issue_token, read_token
from azora_nexus.errors import Unauthorized

SECRET = "s" * 48


def test_a_remembered_token_is_refused_once_its_exp_passes() -> None:
    exp = int(time.time()) + 1
    token = jwt.encode({"sub": "ada", "role": "user", "exp": exp}, SECRET, algorithm=ALGORITHM)
    assert read_token(SECRET, token) == Principal("ada", Role.USER)
    assert read_token(SECRET, token) == Principal("ada", Role.USER)  # from memory
    while time.time() < exp:
        time.sleep(0.05)
    with pytest.raises(Unauthorized, match="token expired"):
        read_token(SECRET, token)
    with pytest.raises(Unauthorized, match="token expired"):
        read_token(SECRET, token)


def test_a_token_is_remembered_only_under_its_own_secret() -> None:
    token = issue_token(SECRET, sub="ada", role=Role.ADMIN)
    assert read_token(SECRET, token).role is Role.ADMIN
    with pytest.raises(Unauthorized, match="invalid token"):
        read_token("t" * 48, token)


def test_a_refused_token_is_not_remembered() -> None:
    token = issue_token(SECRET, sub="ada", role=Role.USER, ttl_s=-5)
    for _ in range(2):
        with pytest.raises(Unauthorized, match="token expired"):
            read_token(SECRET, token)
    assert (SECRET, token) not in tokens._VERIFIED


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_MAX", 3)
    tokens._VERIFIED.clear()
    for n in range(10):
        read_token(SECRET, issue_token(SECRET, sub=f"u{n}", role=Role.USER))
        assert len(tokens._VERIFIED) <= 3

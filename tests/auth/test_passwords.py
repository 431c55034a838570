"""argon2id password hashes, checked off the event loop."""

from __future__ import annotations

from azora_nexus.auth.passwords import hash_password, verify_password


async def test_hash_is_argon2id_salted_and_verifies_only_the_right_password() -> None:
    first, second = await hash_password("correct horse"), await hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # each hash has its own salt
    assert await verify_password(first, "correct horse")
    assert not await verify_password(first, "correct horse!")


async def test_missing_or_corrupt_hashes_never_verify() -> None:
    assert not await verify_password(None, "a password nobody has")
    assert not await verify_password("not-a-hash", "anything")

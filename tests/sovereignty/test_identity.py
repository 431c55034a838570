"""How erasure recognises and rewrites a user inside text and JSON."""

from __future__ import annotations

import uuid

from azora_nexus.domain.privacy.identity import (
    Subject,
    Tombstone,
    subject_hash,
    subject_hmac,
    subject_key,
)

SUBJECT = Subject(id=uuid.uuid4(), email="ann.lee@example.com", username="ann")
TOMB = Tombstone.new()


def test_the_username_counts_only_as_a_whole_word() -> None:
    assert SUBJECT.names_text("paid by Ann, thanks")
    assert SUBJECT.names_text("ann")
    assert not SUBJECT.names_text("annual fee")
    assert not SUBJECT.names_text("joann paid")
    assert SUBJECT.scrub_text("paid by ANN for the annual fee", TOMB) == (
        f"paid by {TOMB.username} for the annual fee"
    )


def test_the_id_and_email_count_anywhere_in_any_case() -> None:
    text = f"key:{str(SUBJECT.id).upper()}:x mail ANN.LEE@EXAMPLE.COM"
    assert SUBJECT.names_text(text)
    assert SUBJECT.scrub_text(text, TOMB) == f"key:{TOMB.id}:x mail {TOMB.email}"


def test_json_is_scrubbed_in_every_string_and_nothing_else() -> None:
    value = {"userId": str(SUBJECT.id), "n": 3, "items": [{"who": "ann"}, "other"], "ok": True}
    assert SUBJECT.ties(value)
    scrubbed = SUBJECT.scrub(value, TOMB)
    assert scrubbed == {
        "userId": str(TOMB.id),
        "n": 3,
        "items": [{"who": TOMB.username}, "other"],
        "ok": True,
    }
    assert not SUBJECT.ties(scrubbed)


def test_only_ids_tie_an_event_to_the_user_never_their_name() -> None:
    wallet = uuid.uuid4()
    subject = SUBJECT.with_wallets([wallet])
    assert not subject.ties({"memo": "paid by ann", "to": "ann.lee@example.com"})
    assert subject.ties({"memo": "x", "fromWalletId": str(wallet).upper()})
    assert subject.ties({"posterId": str(SUBJECT.id)})
    event = {"type": "ann.wallet.created", "source": "ann", "payload": {"memo": "to ann"}}
    assert subject.scrub_event(event, TOMB) == {
        "type": "ann.wallet.created",
        "source": "ann",
        "payload": {"memo": f"to {TOMB.username}"},
    }


def test_tombstones_are_fresh_and_say_nothing_about_the_user() -> None:
    other = Tombstone.new()
    assert other.id != TOMB.id
    assert TOMB.username.startswith("erased-")
    assert TOMB.email.endswith("@erased.invalid")
    assert str(SUBJECT.id) not in repr(TOMB)
    assert subject_hash(SUBJECT.id) == subject_hash(str(SUBJECT.id))
    assert len(subject_hash(SUBJECT.id)) == 64


def test_the_erasure_key_is_the_setting_or_derived_from_the_jwt_secret() -> None:
    secret = "a-jwt-secret-of-at-least-thirty-two-bytes"
    derived = subject_key(None, secret)
    assert derived == subject_key(None, secret)
    assert derived not in (secret.encode(), subject_key(None, secret + "x"))
    assert subject_key("an explicit erasure key", secret) == b"an explicit erasure key"
    # Another key, another HMAC: without the key the announcement names nobody.
    assert subject_hmac(derived, SUBJECT.id) != subject_hmac(b"guess", SUBJECT.id)
    assert subject_hmac(derived, SUBJECT.id) != subject_hash(SUBJECT.id)

"""Who is being erased, the anonymous stand-in that replaces them, and text scrubbing.

Erasure finds what belongs to the user **by id only**: rows by their keys, events by
`userId`, and someone else's event only when one of its payload values holds the user's id
or the id of one of their wallets (`Subject.ties`). Never by text: a user named "finance",
or one named like another user in other case, must not touch anybody else's data.

Inside what is tied to the user that way (their own rows, the payload of an event tied to
them), their id, email and username are then replaced: the id and the email anywhere in a
string, the username only as a whole word (case-insensitive), so that "ann" is found in
"paid by ann" but not in "annual". An event's type, source and timestamp are never rewritten.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

ERASED_EMAIL_DOMAIN = "erased.invalid"
# Not a hash any verifier accepts: argon2 rejects it as malformed, so nobody signs in with it.
UNUSABLE_PASSWORD_HASH = "!erased"


# Domain separation: the erasure key is derived from the JWT secret, never the secret itself.
_SUBJECT_KEY_LABEL = b"azora-nexus/system.user.erased/subjectHmac/v1"


def subject_hash(user_id: object) -> str:
    """sha256 of the user id as text: the erased users' own record (PostgreSQL, in memory),
    never published."""
    return hashlib.sha256(str(user_id).encode()).hexdigest()


def subject_key(erasure_key: str | None, jwt_secret: str) -> bytes:
    """The key of `subjectHmac`: `AZORA_ERASURE_KEY` when set, else HMAC-SHA256(JWT secret,
    a fixed label), which every holder of the JWT secret can derive and nobody else can."""
    if erasure_key:
        return erasure_key.encode()
    return hmac.new(jwt_secret.encode(), _SUBJECT_KEY_LABEL, hashlib.sha256).digest()


def subject_hmac(key: bytes, user_id: object) -> str:
    """HMAC-SHA256 of the user id as text, hex: what `system.user.erased` carries. A plain
    hash could be matched by anyone against ids seen elsewhere (job posters, contracts); this
    one only by services holding the key."""
    return hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Tombstone:
    """The anonymous account an erased user's ledger history, jobs and contracts move to."""

    id: uuid.UUID
    username: str
    email: str

    @classmethod
    def new(cls) -> Tombstone:
        """A fresh tombstone with a random id that says nothing about whom it replaces."""
        tag = secrets.token_hex(8)
        return cls(id=uuid.uuid4(), username=f"erased-{tag}", email=f"{tag}@{ERASED_EMAIL_DOMAIN}")


@dataclass(frozen=True)
class Subject:
    """The user being erased, as their data may spell them."""

    id: uuid.UUID
    email: str
    username: str
    # Wallets the user held (now the tombstone's): events of others name them by these.
    wallet_ids: frozenset[uuid.UUID] = frozenset()

    def with_wallets(self, wallet_ids: Iterable[uuid.UUID]) -> Subject:
        """The same subject, also recognised by these wallets' ids."""
        return replace(self, wallet_ids=self.wallet_ids | frozenset(wallet_ids))

    def id_texts(self) -> list[str]:
        """The ids that tie a record to the user, as text (lower case, as uuids print)."""
        return [str(self.id), *sorted(str(w) for w in self.wallet_ids)]

    def ties(self, value: Any) -> bool:
        """Whether a JSON-like value holds the user's id or one of their wallets' ids in one
        of its strings: the only way an event of someone else is found to concern them."""
        if isinstance(value, str):
            lowered = value.lower()
            return any(i in lowered for i in self.id_texts())
        if isinstance(value, dict):
            return any(self.ties(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.ties(v) for v in value)
        return False

    def scrub_event(self, event: dict[str, Any], tombstone: Tombstone) -> dict[str, Any]:
        """A copy of an event (wire envelope or archive document) tied to the user, with its
        payload scrubbed; its type, source, ids and times are left as they are."""
        return {**event, "payload": self.scrub(event.get("payload"), tombstone)}

    def _anywhere(self) -> re.Pattern[str]:
        return re.compile(f"{re.escape(str(self.id))}|{re.escape(self.email)}", re.IGNORECASE)

    def _word(self) -> re.Pattern[str]:
        return re.compile(rf"(?<![\w.@-]){re.escape(self.username)}(?![\w@-])", re.IGNORECASE)

    def names_text(self, text: str) -> bool:
        """Whether `text` holds the user's id or email, or their username as a word."""
        return bool(self._anywhere().search(text) or self._word().search(text))

    def scrub_text(self, text: str, tombstone: Tombstone) -> str:
        """`text` with the user's id, email and username replaced by the tombstone's."""
        replaced = re.sub(re.escape(str(self.id)), str(tombstone.id), text, flags=re.IGNORECASE)
        replaced = re.sub(re.escape(self.email), tombstone.email, replaced, flags=re.IGNORECASE)
        return self._word().sub(tombstone.username, replaced)

    def scrub(self, value: Any, tombstone: Tombstone) -> Any:
        """A copy of a JSON-like value with every string scrubbed."""
        if isinstance(value, str):
            return self.scrub_text(value, tombstone)
        if isinstance(value, dict):
            return {k: self.scrub(v, tombstone) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v, tombstone) for v in value]
        return value

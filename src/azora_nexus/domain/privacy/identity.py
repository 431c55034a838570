"""Who is being erased, the anonymous stand-in that replaces them, and text scrubbing.

Anything Nexus keeps may name the user by id, email or username. The id and the email are
distinctive enough to be matched anywhere inside a string; the username only as a whole
word (case-insensitive), so that "ann" is found in "paid by ann" but not in "annual".
A username that is an ordinary word ("course") will also be replaced where someone else
used that word: erasure prefers removing too much to leaving the person findable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

ERASED_EMAIL_DOMAIN = "erased.invalid"
# Not a hash any verifier accepts: argon2 rejects it as malformed, so nobody signs in with it.
UNUSABLE_PASSWORD_HASH = "!erased"


def subject_hash(user_id: object) -> str:
    """sha256 of the user id as text: how services that know the id recognise an erasure."""
    return hashlib.sha256(str(user_id).encode()).hexdigest()


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

    def _anywhere(self) -> re.Pattern[str]:
        return re.compile(f"{re.escape(str(self.id))}|{re.escape(self.email)}", re.IGNORECASE)

    def _word(self) -> re.Pattern[str]:
        return re.compile(rf"(?<![\w.@-]){re.escape(self.username)}(?![\w@-])", re.IGNORECASE)

    def sql_pattern(self) -> str:
        """A PostgreSQL regular expression (for `~*`) matching text that may name the user."""
        # Python's re.escape output is a valid ARE for ids, emails and usernames.
        return "|".join(re.escape(s) for s in (str(self.id), self.email, self.username))

    def names_text(self, text: str) -> bool:
        """Whether `text` holds the user's id or email, or their username as a word."""
        return bool(self._anywhere().search(text) or self._word().search(text))

    def mentions(self, value: Any) -> bool:
        """Whether a JSON-like value names the user in any of its strings."""
        if isinstance(value, str):
            return self.names_text(value)
        if isinstance(value, dict):
            return any(self.mentions(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.mentions(v) for v in value)
        return False

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

"""Who may receive an event (CONTRACT.md, "Socket.IO")."""

from __future__ import annotations

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.events.envelope import Event


def may_receive(principal: Principal, event: Event) -> bool:
    """Public events go to anyone; a user's events to that user and to admins, nobody else."""
    return (
        event.user_id is None or event.user_id == principal.user_id or principal.role is Role.ADMIN
    )


def visible_only_to(principal: Principal) -> str | None:
    """The history filter for a socket's replay: None when it may see every user's events."""
    return None if principal.role is Role.ADMIN else principal.user_id

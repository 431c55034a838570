"""Who may export or erase a user: the user themselves, or an admin (CONTRACT.md)."""

from __future__ import annotations

import uuid

from azora_nexus.auth.tokens import Principal, Role
from azora_nexus.errors import Forbidden


def require_self_or_admin(actor: Principal, user_id: uuid.UUID) -> None:
    """Forbidden (403) unless `actor` is the user or an admin.

    Services are refused too: the contract grants these two routes to the user and to
    admins only, since one hands out everything about a person and the other destroys it.
    """
    if actor.role is Role.ADMIN:
        return
    if actor.role is Role.USER and actor.user_id == str(user_id):
        return
    raise Forbidden("only the user or an admin may do this")

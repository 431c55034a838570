"""`GET /api/users/{id}/export`: everything about the user, for the user or an admin only."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.sovereignty.life import ADMIN, SERVICE, Life, register, wait_archived
from tests.support.server import Node


async def test_export_holds_every_kind_of_data(http: AsyncClient, node: Node, life: Life) -> None:
    alice = life.alice
    await wait_archived(node.nexus.documents, alice, 10)
    response = await http.get(f"/api/users/{alice.id}/export", headers=alice.headers)
    assert response.status_code == 200, response.text
    exported: dict[str, Any] = response.json()

    user = exported["user"]
    assert (user["id"], user["email"], user["username"]) == alice.needles
    assert user["profile"]["displayName"] == "Alice Example"
    [wallet] = exported["wallets"]
    assert (wallet["id"], wallet["balance"]) == (life.alice_wallet, "360.00")
    kinds = [t["kind"] for t in wallet["transactions"]]
    assert sorted(kinds) == sorted(["mining_reward", "transfer", "transfer", "escrow_hold"])
    for transaction in wallet["transactions"]:
        assert len(transaction["postings"]) == 2
        assert sum(float(p["amount"]) for p in transaction["postings"]) == 0  # two places
    [enrollment] = exported["enrollments"]
    assert enrollment["progress"] == 100
    [certificate] = exported["certificates"]
    assert certificate["enrollmentId"] == enrollment["id"]
    assert exported["achievements"]
    assert sorted(j["title"] for j in exported["jobs"]) == ["Audit my books", "Walk the dog"]
    [application] = exported["applications"]
    assert application["status"] == "pending"
    [contract] = exported["contracts"]
    assert (contract["id"], contract["status"]) == (life.contract["id"], "released")
    types = {e["type"] for e in exported["events"]}
    assert {
        "system.user.registered",
        "system.user.login",
        "finance.wallet.created",
        "finance.transaction.completed",
        "education.course.enrolled",
        "education.certificate.issued",
        "marketplace.contract.signed",
        "marketplace.payment.released",
        "system.alert",
    } <= types
    assert all(e["userId"] == alice.id for e in exported["events"])
    [activity] = exported["activity"]
    assert activity["type"] == "page.view"
    [content] = exported["content"]
    assert content["ownerId"] == alice.id


async def test_only_the_user_or_an_admin_may_export(http: AsyncClient, life: Life) -> None:
    url = f"/api/users/{life.alice.id}/export"
    assert (await http.get(url, headers=life.bob.headers)).status_code == 403
    assert (await http.get(url, headers=SERVICE)).status_code == 403
    assert (await http.get(url)).status_code == 401
    by_admin = await http.get(url, headers=ADMIN)
    assert by_admin.status_code == 200
    assert by_admin.json()["user"]["email"] == life.alice.email
    unknown = await http.get(
        "/api/users/00000000-0000-4000-8000-000000000000/export", headers=ADMIN
    )
    assert unknown.status_code == 404


async def test_a_new_user_exports_empty_lists(http: AsyncClient, node: Node) -> None:
    carol = await register(http, "carol")
    response = await http.get(f"/api/users/{carol.id}/export", headers=carol.headers)
    assert response.status_code == 200, response.text
    exported = response.json()
    assert exported["user"]["username"] == carol.username
    for part in (
        "wallets",
        "enrollments",
        "certificates",
        "achievements",
        "jobs",
        "applications",
        "contracts",
        "activity",
        "content",
    ):
        assert exported[part] == [], part
    assert all(e["userId"] == carol.id for e in exported["events"])

"""A transfer's request hash is stored with its key: it must never change for a body."""

from __future__ import annotations

import uuid

from azora_nexus.domain.ledger.schemas import TransferRequest
from azora_nexus.domain.ledger.transfers import request_hash

SOURCE = uuid.UUID("8a0c1f3e-58a4-4a43-9d5e-1f7b3a2c9d10")
TARGET = uuid.UUID("0f1e2d3c-4b5a-4968-8776-655443322110")


def test_the_hash_of_a_body_is_what_was_stored_before() -> None:
    # Digests of the earlier form (the body's model_dump without its key), kept in the
    # ledger's rows: a retried key is compared against them.
    plain = TransferRequest(
        from_wallet_id=SOURCE, to_wallet_id=TARGET, amount="12.3400", idempotency_key="k1"
    )
    memo = TransferRequest(
        from_wallet_id=SOURCE, to_wallet_id=TARGET, amount="7", idempotency_key="k2", memo="rent é"
    )
    assert request_hash(plain) == "149f2694cdc62f3faebfa7ccbe0dcffb122d43e91be49c2430bef9a4572d458d"
    assert request_hash(memo) == "889798964738d6d23f3c057d3027015a95d35b6747accd5eb36232f0d0499181"


def test_the_key_is_not_part_of_the_hash_and_the_amount_is_normalised() -> None:
    one = TransferRequest(
        from_wallet_id=SOURCE, to_wallet_id=TARGET, amount="5.0", idempotency_key="a"
    )
    two = TransferRequest(
        from_wallet_id=SOURCE, to_wallet_id=TARGET, amount="5", idempotency_key="b"
    )
    other = TransferRequest(
        from_wallet_id=TARGET, to_wallet_id=SOURCE, amount="5", idempotency_key="a"
    )
    assert request_hash(one) == request_hash(two) != request_hash(other)

"""A user's data: export everything Nexus holds about them (export.py), and erase it
(erasure.py, with rows.py for PostgreSQL and traces.py for the stream, Mongo and the cache).

What other services need to know about an erasure:
- `system.user.erased` is published (through the outbox, in the erasing transaction) with
  payload `{"subjectHmac": HMAC-SHA256(key, user id as text) in hex, "requestedBy": "user" |
  "admin"}` and no `userId`, so every subscriber of the type receives it, but only a holder
  of the key can tell whom it names (a plain hash could be matched against ids seen anywhere).
  The key is `AZORA_ERASURE_KEY`, or when unset HMAC-SHA256(`AZORA_JWT_SECRET`,
  "azora-nexus/system.user.erased/subjectHmac/v1") (`identity.subject_key`). A service that
  keeps data keyed by user ids computes the HMAC of the ids it holds, erases its own copy
  on a match, and must not write the id back into Nexus. A service that was down resumes
  from its last event id (`after`): the event is kept in history like any other.
- Tokens naming an erased id are refused on every node, over HTTP (401) and Socket.IO
  (connect refused), including tokens minted after the erasure by other holders of the
  secret: the Redis set `azora:erased` holds the hashes (SISMEMBER sha256(sub) to check).
- The ledger is untouched: wallets, postings, jobs, accepted applications and contracts now
  belong to an inactive tombstone user (`erased-<hex>`, `<hex>@erased.invalid`) whose id is
  random and published nowhere, so the hash cannot be linked to the anonymous account.
  Wallet, transaction, job and contract ids stay valid for counterparties.
- Erasure finds a user in events and documents by `userId`, and by their id, email or
  username (as a whole word) inside any string: events other services publish about a user
  should carry the user in `userId`. Events addressed to the user are deleted; events for
  others that name the user are rewritten to name the tombstone (in the Mongo archive; on
  the Redis stream, which cannot be rewritten, they are deleted and kept in the archive).
- Sockets already connected when the user is erased are closed on every node when
  `system.user.erased` reaches it (realtime/namespace.py), and their reconnect is refused.
"""

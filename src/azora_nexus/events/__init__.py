"""Events: every change a client may see, published once, in order, never for a rolled-back write.

* envelope.py, taxonomy.py: what an event is (CONTRACT.md) and which types exist.
* outbox.py: `add_event(session, ...)` joins a domain write's own transaction.
* relay.py: one relay across all nodes (an advisory lock) moves committed outbox rows onto
  the stream, exactly once even across its own crash (stream.py's Lua step).
* bus.py: `publish(...)` for events with no write behind them: straight onto the stream.
* stream.py: the capped Redis stream `azora:events`; its entry id is the event id.
* archiver.py, archive.py: a consumer group copies every entry to Mongo, in batches.
* history.py: reads after an id from the stream and, beyond its cap, the archive.
* tailer.py: each node follows the stream and hands new events to realtime/.
* background.py: the bus and its background tasks (relay, tailer, archiver), opened by
  `open_nexus`.
"""

"""Event bus: one protocol, in-process and Redis Streams implementations; per-run seq, replay, cancellation."""

"""Redis plumbing every Redis-backed service shares: the client it opens from APEX_REDIS_URL
and the errors it catches (stand-ins when the redis extra is not installed)."""

"""HTTP and WebSocket API (FastAPI): routers, /ws, SSE, auth dependencies, error mapping."""

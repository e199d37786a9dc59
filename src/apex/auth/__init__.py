"""Authentication: passwords, JWT access tokens, refresh families, revocation, OIDC, WebSocket tickets, rate limits."""

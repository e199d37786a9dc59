"""Repositories: the only code that queries app data. User-owned data is always scoped by user_id."""

"""App data: SQLAlchemy 2.0 async models, repositories and Alembic migrations (SQLite or
PostgreSQL), and how a Redis that does not answer is reported."""

"""The schema behaves identically on SQLite and PostgreSQL (every test runs on both)."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from apex.store.database import Database
from apex.store.models import Message, Run, Thread, User


async def test_migrations_create_every_table_and_are_idempotent(database: Database) -> None:
    await database.upgrade()
    async with database.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "users",
        "oidc_identities",
        "refresh_families",
        "refresh_tokens",
        "threads",
        "messages",
        "runs",
        "alembic_version",
    } <= tables


async def test_email_is_unique(database: Database) -> None:
    async with database.session() as session:
        session.add(User(email="a@example.com"))
        await session.commit()
    async with database.session() as session:
        session.add(User(email="a@example.com"))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_datetimes_round_trip_as_aware_utc(database: Database) -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 3, 1, 12, 30, 15, 123000, tzinfo=paris)
    async with database.session() as session:
        user = User(email="t@example.com", created_at=moment)
        session.add(user)
        await session.commit()
        user_id = user.id
    async with database.session() as session:
        loaded = await session.get(User, user_id)
        assert loaded is not None
        assert loaded.created_at == moment
        assert loaded.created_at.tzinfo is not None
        assert loaded.created_at.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_refused(database: Database) -> None:
    async with database.session() as session:
        session.add(User(email="n@example.com", created_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            await session.commit()


async def test_thread_messages_and_runs_cascade_with_their_user(database: Database) -> None:
    report = {"totals": {"cost_usd": 12.34}, "recommendations": [{"id": "r1"}]}
    async with database.session() as session:
        user = User(email="c@example.com")
        session.add(user)
        await session.flush()
        thread = Thread(user_id=user.id, title="Costs")
        session.add(thread)
        await session.flush()
        run = Run(user_id=user.id, thread_id=thread.id, text="cut costs")
        session.add_all(
            [
                run,
                Message(thread_id=thread.id, user_id=user.id, role="user", text="cut costs"),
                Message(
                    thread_id=thread.id,
                    user_id=user.id,
                    role="assistant",
                    text="done",
                    report=report,
                ),
            ]
        )
        await session.commit()
        user_id = user.id
    async with database.session() as session:
        stored = (
            await session.execute(select(Message).where(Message.role == "assistant"))
        ).scalar_one()
        assert stored.report == report
        assert (await session.get(Run, run.id)).state == "pending"  # type: ignore[union-attr]
        await session.delete(await session.get(User, user_id))
        await session.commit()
    async with database.session() as session:
        for model in (Thread, Message, Run):
            assert await session.scalar(select(func.count()).select_from(model)) == 0


async def test_ids_are_time_ordered(database: Database) -> None:
    async with database.session() as session:
        users = [User(email=f"u{i}@example.com") for i in range(5)]
        session.add_all(users)
        await session.commit()
    ids = [u.id for u in users]
    assert all(len(i) == 32 for i in ids)
    assert ids[0][:12] <= ids[-1][:12]
    assert datetime.now(UTC) - datetime.fromtimestamp(int(ids[0][:12], 16) / 1000, UTC) < timedelta(
        minutes=1
    )

"""The composition root: builds every service from Settings and wires the routers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from apex import __version__
from apex.agents.metering import ledger_recorder
from apex.agents.supervisor import SupervisorWorkflow
from apex.analytics.factory import build_importer, open_ledger
from apex.analytics.ingest import UsageImporter
from apex.analytics.live_ingest import LiveIngest
from apex.api.errors import install_error_handlers
from apex.api.health import ReadinessCheck
from apex.api.health import router as health_router
from apex.api.middleware import RequestContextMiddleware
from apex.api.routes_alerts import router as alerts_router
from apex.api.routes_auth import router as auth_router
from apex.api.routes_budgets import router as budgets_router
from apex.api.routes_ingest_keys import router as ingest_keys_router
from apex.api.routes_otlp import router as otlp_router
from apex.api.routes_runs import router as runs_router
from apex.api.routes_threads import router as threads_router
from apex.api.routes_usage import router as usage_router
from apex.api.routes_webhooks import router as webhooks_router
from apex.api.websocket import router as websocket_router
from apex.api.ws_auth import close_revoked
from apex.api.ws_hub import ConnectionHub
from apex.auth.ingestion_keys import IngestionKeys
from apex.auth.stack import open_auth_stack
from apex.config import Settings, load_settings
from apex.config.extras import check_extras
from apex.config.logging import configure_logging, get_logger
from apex.execution.manager import RunManager
from apex.execution.workflow import Workflow
from apex.llm.factory import build_language_model
from apex.llm.language import preload as preload_language
from apex.monitoring.service import open_monitoring
from apex.realtime.bus import EventBus
from apex.realtime.memory import InProcessEventBus
from apex.shared_redis.client import redis_client
from apex.store.database import Database
from apex.store.repositories.ingestion_keys import IngestionKeyRepository
from apex.web import STATIC_DIR

log = get_logger("apex.app")
# OTLP exports read at once, at most (each holds up to `otlp_max_request_bytes`, twice)
OTLP_CONCURRENT_REQUESTS = 16


def _redis_check(url: str) -> ReadinessCheck:
    async def check() -> None:
        client = redis_client(url)
        try:
            await client.ping()
        finally:
            await client.aclose()

    return check


def _clickhouse_check(url: str) -> ReadinessCheck:
    async def check() -> None:
        async with httpx2.AsyncClient(timeout=2.0) as client:
            response = await client.get(url.rstrip("/") + "/ping")
            response.raise_for_status()

    return check


async def _finish_interrupted_repricing(importer: UsageImporter) -> None:
    """Rows a stop left mid-way through a re-pricing get the prices their tenant set: before the
    first request on the embedded ledger, in the background on ClickHouse. A ClickHouse ledger
    that cannot be reached yet is not a reason to stop starting; its marks are finished at the
    tenant's next price change or re-priced commit, or the next start."""
    try:
        tenants = await asyncio.to_thread(importer.finish_interrupted_repricing)
    except Exception as exc:
        log.warning("ledger.repricing_not_finished", error=str(exc))
        return
    if tenants:
        log.warning("ledger.repricing_finished", tenants=len(tenants))


def build_event_bus(settings: Settings) -> EventBus:
    """Redis Streams when Redis is configured (several processes), else in-process. The Redis
    bus (and the redis extra) is imported only then."""
    if settings.redis_url:
        from apex.realtime.redis_streams import RedisEventBus

        return RedisEventBus(
            settings.redis_url,
            replay_max=settings.event_replay_max,
            replay_ttl_s=settings.event_replay_ttl_s,
            worker_lost_after_s=settings.worker_lost_after_s,
            outbox_max=settings.event_outbox_max,
        )
    return InProcessEventBus(
        replay_max=settings.event_replay_max,
        replay_ttl_s=settings.event_replay_ttl_s,
        retained_runs=settings.event_replay_retained_runs,
    )


def create_app(settings: Settings | None = None, *, workflow: Workflow | None = None) -> FastAPI:
    """`workflow` is what every run executes; by default the agents' supervisor workflow."""
    settings = settings or load_settings()
    check_extras(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(level=settings.log_level, json=settings.json_logs)
        db = Database(settings.resolved_database_url)
        await db.upgrade()
        checks: dict[str, ReadinessCheck] = {"database": db.ping}
        if settings.redis_url:
            checks["redis"] = _redis_check(settings.redis_url)
        if settings.clickhouse_url:
            checks["clickhouse"] = _clickhouse_check(settings.clickhouse_url)
        app.state.settings = settings
        app.state.db = db
        app.state.readiness_checks = checks
        app.state.language_model = build_language_model(settings)
        # the question-language identifier takes about a second to load: in the background,
        # so the server is ready at once and the first question rarely waits for it
        threading.Thread(target=preload_language, name="apex-language", daemon=True).start()
        auth = await open_auth_stack(settings, db)
        app.state.access_tokens = auth.access_tokens
        app.state.auth = auth.auth
        app.state.accounts = auth.accounts
        app.state.oidc = auth.oidc
        app.state.ledger = open_ledger(settings)
        app.state.usage_importer = build_importer(settings, app.state.ledger)
        app.state.usage_tasks = set()
        finishing = asyncio.create_task(_finish_interrupted_repricing(app.state.usage_importer))
        if app.state.ledger.sole_writer:
            await finishing
        else:  # a shared ClickHouse may be slow to reach: the API starts meanwhile
            app.state.usage_tasks.add(finishing)
            finishing.add_done_callback(app.state.usage_tasks.discard)
        app.state.ledger.prepare_recent_answers_soon(settings.ledger_prepare_tenants)
        app.state.price_catalog = app.state.usage_importer.catalog
        importer = app.state.usage_importer
        app.state.ingestion_keys = IngestionKeys(IngestionKeyRepository(db))
        app.state.live_ingest = LiveIngest(
            importer,
            commit_interval_s=settings.otlp_commit_interval_s,
            commit_rows=settings.otlp_commit_rows,
            max_pending_rows=settings.otlp_max_pending_rows,
        )
        app.state.otlp_requests = asyncio.Semaphore(OTLP_CONCURRENT_REQUESTS)
        run_workflow = workflow or SupervisorWorkflow(
            ledger=app.state.ledger,
            catalog_for=importer.catalog_for,
            model=app.state.language_model,
            recorder_for=lambda user_id: ledger_recorder(importer, user_id),
            step_delay_s=settings.step_delay_ms / 1000,
        )
        bus = build_event_bus(settings)
        await bus.start()
        run_manager = RunManager(settings=settings, db=db, bus=bus, workflow=run_workflow)
        await run_manager.open()
        ws_hub = ConnectionHub(settings.ws_heartbeat_s)
        await ws_hub.start()
        auth.auth.revocations.on_revoked(lambda: close_revoked(ws_hub.members(), auth.auth))
        app.state.event_bus = bus
        app.state.run_manager = run_manager
        app.state.threads = run_manager.threads
        app.state.messages = run_manager.messages
        app.state.ws_hub = ws_hub
        monitoring = open_monitoring(settings, db, app.state.ledger)
        await monitoring.start(ws_hub.send_to)
        importer.on_rows_committed(monitoring.triggers.evaluate_soon)
        app.state.monitoring = monitoring
        log.info(
            "apex_started",
            env=settings.env.value,
            database=db.dialect,
            redis=bool(settings.redis_url),
            clickhouse=bool(settings.clickhouse_url),
        )
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.live_ingest.close)
            await run_manager.close()
            await monitoring.close()
            await ws_hub.close()
            await bus.close()
            await app.state.language_model.aclose()
            await auth.close()
            for task in list(app.state.usage_tasks):
                task.cancel()
            app.state.ledger.close()
            await db.dispose()
            log.info("apex_stopped")

    app = FastAPI(
        title="Apex",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(usage_router)
    app.include_router(threads_router)
    app.include_router(runs_router)
    app.include_router(budgets_router)
    app.include_router(alerts_router)
    app.include_router(webhooks_router)
    app.include_router(websocket_router)
    app.include_router(ingest_keys_router)
    app.include_router(otlp_router)
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="web")
    return app

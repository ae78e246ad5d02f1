"""The service's wiring: engine, sessions, storage, rate limiter, dispatcher, metrics.

One :class:`ServiceContext` per app (no module-level state); the web UI and the CLI build the
same object to call the job, key and audit functions. Which dispatcher runs the jobs is passed
in (a :data:`DispatcherFactory`): the composition root (:mod:`veracity.server`) picks Celery when
a broker is configured; this module knows only the embedded pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from veracity.config import Settings
from veracity.errors import ConfigError
from veracity.service import jobs
from veracity.service.auth import RateLimiter
from veracity.service.db import is_sqlite, make_engine, make_read_sessionmaker, make_sessionmaker, migrate
from veracity.service.dispatch import Dispatcher, EmbeddedPool, Sweeper
from veracity.service.runner import JobRunner
from veracity.service.signals import JobSignals
from veracity.service.storage import Storage
from veracity.service.webhooks import RetryPolicy, WebhookPool, WebhookSender, resolve_secret

DispatcherFactory = Callable[["ServiceContext"], Dispatcher]

log = logging.getLogger("veracity.service")


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage
    limiter: RateLimiter
    webhook_secret: str
    read_sessions: sessionmaker[Session]
    dispatcher: Dispatcher | None = None
    sweeper: Sweeper | None = None
    extras: dict[str, object] = field(default_factory=dict)

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (never takes SQLite's write lock; do not write in it)."""
        with self.read_sessions.begin() as session:
            yield session

    def submit(self, job_id: str) -> None:
        if self.dispatcher is not None:
            self.dispatcher.submit(job_id)

    def signals(self) -> JobSignals | None:
        """Completion notices of jobs run in this process (embedded pool), or None when jobs run
        elsewhere (Celery, no workers): then a waiter has only the database to poll."""
        return self.dispatcher.signals if isinstance(self.dispatcher, EmbeddedPool) else None

    def notify_final(self, job_id: str) -> None:
        """A job was ended here outside a worker (cancelled): wake its waiters."""
        if (signals := self.signals()) is not None:
            signals.notify(job_id)

    def queue_depth(self) -> int | None:
        return self.dispatcher.queue_depth() if isinstance(self.dispatcher, EmbeddedPool) else None

    def start(self, *, workers: bool = True, dispatcher: DispatcherFactory | None = None) -> None:
        """Start the dispatcher ``dispatcher(self)`` builds (default: the embedded pool, which a
        configured broker refuses: scale-out is wired by the composition root)."""
        self.storage.ensure()
        self.sweep_orphans()
        if not workers:
            return
        if dispatcher is None:
            if self.settings.broker_url:
                raise ConfigError("VERACITY_BROKER_URL is set: start the app with veracity.server.create_app")
            dispatcher = embedded_pool
        self.dispatcher = dispatcher(self)
        self.dispatcher.start()
        self.sweeper = Sweeper(
            self.sessions, self.settings.job_stale_s, self.dispatcher.submit, self.settings.job_max_attempts
        )
        self.sweeper.start()

    def sweep_orphans(self) -> list[str]:
        """Start-up: delete stored media no job refers to (a process killed mid-upload leaves its
        partial file behind; nothing else would ever remove it)."""
        try:
            removed = self.storage.sweep_orphans(jobs.media_in_use(self.sessions), self.settings.orphan_age_s)
        except Exception:  # a sweep must never keep the service from starting
            log.exception("orphan sweep failed")
            return []
        if removed:
            log.warning("removed %d orphaned file(s) from media storage", len(removed))
        return removed

    def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.engine.dispose()


def open_context(settings: Settings, *, run_migrations: bool | None = None, secrets: bool = True) -> ServiceContext:
    """Connect (and migrate: always for SQLite, for other databases unless told not to).

    ``secrets=False`` is for admin commands (keys, audit) that send no webhooks, so they work on a
    production database without the webhook secret at hand.
    """
    engine = make_engine(settings.effective_database_url)
    if run_migrations is None:
        run_migrations = True
    if run_migrations or is_sqlite(settings.effective_database_url):
        migrate(engine)
    from veracity.service.audit import KEY_INFO, resolve_key

    sessions = make_sessionmaker(engine)
    read_sessions = make_read_sessionmaker(engine)
    key = resolve_key(settings)
    sessions.configure(info={KEY_INFO: key})
    read_sessions.configure(info={KEY_INFO: key})
    return ServiceContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        storage=Storage(settings.effective_storage_dir),
        limiter=RateLimiter(settings.rate_limit_per_min),
        webhook_secret=resolve_secret(settings) if secrets else "",
        read_sessions=read_sessions,
    )


def embedded_pool(ctx: ServiceContext) -> EmbeddedPool:
    """Embedded mode: worker threads, and a small webhook pool with the settings' retry policy."""
    sender = WebhookSender(ctx.sessions, ctx.settings, ctx.webhook_secret)
    hooks = WebhookPool(sender, RetryPolicy.from_settings(ctx.settings))

    def runner(send: Callable[[str], None]) -> JobRunner:
        return build_runner(ctx.settings, context=ctx, send_webhook=send)

    return EmbeddedPool(runner, ctx.sessions, ctx.settings.embedded_workers, hooks, ctx.settings.job_max_attempts)


def build_runner(
    settings: Settings,
    *,
    context: ServiceContext | None = None,
    send_webhook: Callable[[str], None],
) -> JobRunner:
    """A runner for a worker thread (embedded) or a worker process (Celery)."""
    ctx = context or open_context(settings, run_migrations=False)

    def analyzer() -> object:
        from veracity.pipeline import Analyzer

        return Analyzer(settings)

    return JobRunner(
        settings=settings,
        sessions=ctx.sessions,
        storage=ctx.storage,
        analyzer_factory=analyzer,  # type: ignore[arg-type]
        send_webhook=send_webhook,
    )

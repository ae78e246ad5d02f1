"""The HTTP service: FastAPI app, durable jobs, storage, API keys, audit log, webhooks.

Embedded (default): one process, SQLite in WAL mode and an in-process worker pool.
Scaled out: the same app on PostgreSQL with a Redis broker and Celery workers (``veracity worker``).
Nothing here does I/O at import; :func:`veracity.service.app.create_app` builds everything.
"""

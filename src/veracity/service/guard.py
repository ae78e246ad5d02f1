"""Slow clients: deadlines on request headers and bodies, which uvicorn does not have.

uvicorn's only timer is keep-alive, and every byte received resets it, so a client that sends a
header byte a second (slowloris) or a body at 1 B/s holds a connection, and what it has sent so
far, forever. :class:`GuardedH11Protocol` adds two checks:

* headers: from the moment a connection opens (or a response completes on a kept-alive one)
  the next request's headers must be complete within ``header_timeout_s``;
* body: while a request body is arriving, no gap may exceed ``body_idle_s``, and after
  ``body_grace_s`` the average rate must be at least ``body_min_rate`` bytes/s.

A connection that breaks either is closed; the app sees a disconnect (uploads are discarded).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from veracity.config import Settings


class GuardedH11Protocol(H11Protocol):
    header_timeout_s = 10.0
    body_idle_s = 30.0
    body_grace_s = 30.0
    body_min_rate = 1024.0
    check_every_s = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._seen_cycle: object | None = None
        self._body_started = 0.0
        self._body_last = 0.0
        self._body_bytes = 0

    # --- headers ---------------------------------------------------------------------------
    def _arm_headers(self) -> None:
        self._cancel_headers()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_headers(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.cycle is None or self.cycle.response_complete:  # still waiting for a request
            self._drop("request headers not complete in time")

    def _drop(self, why: str) -> None:
        if not self.transport.is_closing():
            self.logger.info("closing a slow connection from %s: %s", self.client, why)
            self.transport.close()

    # --- body ------------------------------------------------------------------------------
    def _arm_body(self) -> None:
        now = time.monotonic()
        self._body_started = self._body_last = now
        self._body_bytes = 0
        self._schedule_body_check()

    def _schedule_body_check(self) -> None:
        self._body_timer = self.loop.call_later(self.check_every_s, self._check_body)

    def _check_body(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        now = time.monotonic()
        elapsed = now - self._body_started
        if now - self._body_last > self.body_idle_s:
            self._drop(f"request body idle for {self.body_idle_s:.0f} s")
        elif elapsed > self.body_grace_s and self._body_bytes / elapsed < self.body_min_rate:
            self._drop(f"request body slower than {self.body_min_rate:.0f} B/s")
        else:
            self._schedule_body_check()

    # --- uvicorn hooks ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers()

    def data_received(self, data: bytes) -> None:
        receiving_body = self.conn.their_state is h11.SEND_BODY
        super().data_received(data)
        if receiving_body:
            self._body_bytes += len(data)
            self._body_last = time.monotonic()
        if self.cycle is not None and self.cycle is not self._seen_cycle:
            self._seen_cycle = self.cycle  # a new request's headers are complete
            self._cancel_headers()
            if self.conn.their_state is h11.SEND_BODY and self._body_timer is None:
                self._arm_body()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_headers()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().connection_lost(exc)


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """The protocol class with this deployment's limits (uvicorn instantiates it per connection)."""
    return type(
        "VeracityH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": settings.http_header_timeout_s,
            "body_idle_s": settings.http_body_idle_s,
            "body_grace_s": settings.http_body_grace_s,
            "body_min_rate": settings.http_body_min_rate,
        },
    )

"""SSRF-safe HTTP: URL ingestion and webhook delivery.

Every hop (the first request and each redirect) is checked the same way: http or https only, the
host resolved here, every resolved address checked, and the connection made to the checked
address (the host name still goes in ``Host`` and TLS SNI, so certificates are verified against
it). Resolving once and connecting to that address closes the DNS-rebinding gap between check
and use. Loopback, private, link-local (169.254.169.254 and other metadata endpoints included),
CGNAT, multicast, reserved and unspecified addresses are refused unless the host or address is
on ``Settings.url_allowlist``. Size, total time and redirect count are capped.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from veracity.config import Settings
from veracity.errors import MediaTooLarge
from veracity.service.errors import FetchFailed, UrlNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "100.64.0.0/10",  # carrier-grade NAT (Alibaba metadata 100.100.100.200)
        "fd00:ec2::/32",  # AWS IPv6 metadata
        "64:ff9b::/96",  # NAT64 can reach IPv4-internal hosts
        "192.0.0.0/24",
        "198.18.0.0/15",
    )
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchFailed(f"cannot resolve host {host!r}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> AllowList:
        hosts: set[str] = set()
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for e in entries:
            try:
                nets.append(ipaddress.ip_network(e, strict=False))
            except ValueError:
                hosts.add(e.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(nets))

    def allows_ip(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.networks)


def is_public(ip: IPAddress) -> bool:
    """True for an address on the public internet."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    if (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    ):
        return False
    return not any(ip.version == n.version and ip in n for n in _EXTRA_BLOCKED)


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    host: str
    port: int
    address: str  # the checked address we connect to


def check_url(url: str, settings: Settings, resolver: Resolver = system_resolver) -> Target:
    """Validate one hop; raise :class:`UrlNotAllowed` when the rules refuse it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed(f"malformed URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed(f"only http and https URLs are fetched, not {parts.scheme or 'none'!r}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UrlNotAllowed("URL has no host")
    port = port or (443 if parts.scheme == "https" else 80)
    allow = AllowList.parse(settings.url_allowlist)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [host] if literal is not None else resolver(host, port)
    if not addresses:
        raise FetchFailed(f"host {host!r} has no address")
    for raw in addresses:
        ip = ipaddress.ip_address(raw.split("%", 1)[0])
        if not (is_public(ip) or host in allow.hosts or allow.allows_ip(ip)):
            raise UrlNotAllowed(f"{host} resolves to a non-public address ({ip})")
    return Target(url=url, host=host, port=port, address=addresses[0])


def _pinned(target: Target) -> tuple[str, dict[str, str], dict[str, str]]:
    parts = urlsplit(target.url)
    ip = ipaddress.ip_address(target.address.split("%", 1)[0])
    host_literal = f"[{ip}]" if ip.version == 6 else str(ip)
    default = 443 if parts.scheme == "https" else 80
    netloc = host_literal if target.port == default else f"{host_literal}:{target.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = target.host if target.port == default else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if parts.scheme == "https" else {}
    return url, {"Host": host_header}, extensions


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read, write and TLS handshake waits at most until ``deadline``.

    Per-read timeouts alone do not bound a download: a server that drips one byte a second (in
    the headers or the body) satisfies every read and never trips them. Capping each wait at
    the time left makes the total wall-clock time the cap, whatever the server does."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch deadline has passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, self._left(timeout)), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the fetch deadline has passed")
        wait = left if timeout is None else min(timeout, left)
        stream = self._inner.connect_tcp(host, port, wait, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def client(settings: Settings, *, deadline: float | None = None) -> httpx.Client:
    """An HTTP client without proxies or redirects; with ``deadline`` (``time.monotonic()``), no
    request through it outlives that instant, however slowly the server sends."""
    transport = None
    if deadline is not None:
        transport = httpx.HTTPTransport(trust_env=False)
        transport._pool = httpcore.ConnectionPool(  # the public API has no network_backend option
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_DeadlineBackend(deadline)
        )
    return httpx.Client(
        timeout=httpx.Timeout(min(10.0, settings.fetch_timeout_s)),
        follow_redirects=False,
        trust_env=False,  # no proxies from the environment: they would bypass the address checks
        headers={"User-Agent": "veracity-fetch/1", "Accept-Encoding": "identity"},
        transport=transport,
    )


@contextmanager
def request(
    http: httpx.Client,
    method: str,
    url: str,
    settings: Settings,
    *,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    resolver: Resolver = system_resolver,
) -> Iterator[httpx.Response]:
    """One request that follows redirects itself, checking every hop; yields the final response."""
    for _ in range(settings.fetch_max_redirects + 1):
        target = check_url(url, settings, resolver)
        pinned_url, host_header, extensions = _pinned(target)
        try:
            with http.stream(
                method, pinned_url, content=content, headers={**(headers or {}), **host_header}, extensions=extensions
            ) as resp:
                if resp.status_code in _REDIRECTS and "location" in resp.headers:
                    url = urljoin(url, resp.headers["location"])
                    if resp.status_code == 303:
                        method, content = "GET", None
                    continue
                yield resp
                return
        except httpx.TimeoutException as exc:
            raise FetchFailed(f"timed out talking to {target.host}") from exc
        except httpx.HTTPError as exc:
            raise FetchFailed(f"request to {target.host} failed: {type(exc).__name__}") from exc
    raise FetchFailed(f"more than {settings.fetch_max_redirects} redirects")


def download(
    url: str,
    write: Callable[[bytes], None],
    settings: Settings,
    *,
    max_bytes: int,
    resolver: Resolver = system_resolver,
) -> int:
    """Stream ``url`` into ``write`` within the size and time caps; return the byte count."""
    deadline = time.monotonic() + settings.fetch_timeout_s
    total = 0
    try:
        with (
            client(settings, deadline=deadline) as http,
            request(http, "GET", url, settings, resolver=resolver) as resp,
        ):
            total = _read_body(resp, write, settings, max_bytes, deadline)
    except FetchFailed:
        if time.monotonic() >= deadline:
            raise FetchFailed(f"download took longer than {settings.fetch_timeout_s:.0f} s") from None
        raise
    if total == 0:
        raise FetchFailed("remote file is empty")
    return total


def _read_body(
    resp: httpx.Response, write: Callable[[bytes], None], settings: Settings, max_bytes: int, deadline: float
) -> int:
    total = 0
    if resp.status_code >= 400:
        raise FetchFailed(f"server answered HTTP {resp.status_code}")
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise MediaTooLarge(f"remote file is {declared} bytes, over the {max_bytes} byte limit")
    try:
        # No chunk size: pieces as they arrive (a 64 KiB chunk waited for 64 KiB, at 1 B/s
        # that is 18 hours, before the deadline was looked at).
        for chunk in resp.iter_raw():
            total += len(chunk)
            if total > max_bytes:
                raise MediaTooLarge(f"remote file is over the {max_bytes} byte limit")
            if time.monotonic() > deadline:
                raise FetchFailed(f"download took longer than {settings.fetch_timeout_s:.0f} s")
            write(chunk)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"download failed: {type(exc).__name__}") from exc
    return total

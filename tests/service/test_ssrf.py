"""URL ingestion and webhook targets: the SSRF rules, as a table and through the API."""

from __future__ import annotations

import pytest
from tests.service.conftest import Api
from tests.service.helpers import wait_job

from veracity.config import Settings
from veracity.service.errors import FetchFailed, UrlNotAllowed
from veracity.service.fetch import check_url, is_public, system_resolver


def fake_dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise FetchFailed(f"cannot resolve {host}")
        return table[host]

    return resolve


DNS = fake_dns(
    {
        "public.example": ["93.184.216.34"],
        "internal.example": ["10.1.2.3"],
        "mixed.example": ["93.184.216.34", "192.168.1.5"],  # one private answer is enough to refuse
        "meta.example": ["169.254.169.254"],
        "v6local.example": ["::1"],
        "mapped.example": ["::ffff:127.0.0.1"],
        "cgnat.example": ["100.100.100.200"],
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.mp4",
        "http://127.1.2.3:8080/x.mp4",
        "http://10.0.0.5/x.mp4",
        "http://172.16.3.4/x.mp4",
        "http://192.168.0.10/x.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.mp4",
        "http://[fe80::1]/x.mp4",
        "http://[::ffff:10.0.0.1]/x.mp4",
        "http://0.0.0.0/x.mp4",
        "http://internal.example/x.mp4",
        "http://mixed.example/x.mp4",
        "http://meta.example/x.mp4",
        "http://v6local.example/x.mp4",
        "http://mapped.example/x.mp4",
        "http://cgnat.example/x.mp4",
        "file:///etc/passwd",
        "gopher://public.example/",
        "ftp://public.example/x.mp4",
        "http:///nohost",
        "http://public.example:99999/x",
    ],
)
def test_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        check_url(url, Settings(), DNS)


def test_localhost_resolves_to_loopback_and_is_refused() -> None:
    with pytest.raises(UrlNotAllowed):
        check_url("http://localhost:8000/x.mp4", Settings(), system_resolver)


def test_public_is_allowed_and_pinned() -> None:
    target = check_url("https://public.example/a.mp4", Settings(), DNS)
    assert target.address == "93.184.216.34"
    assert target.host == "public.example"
    assert target.port == 443


def test_allowlist_by_network_and_host() -> None:
    s = Settings(url_allowlist=("10.0.0.0/8", "meta.example"))
    assert check_url("http://internal.example/x", s, DNS).address == "10.1.2.3"
    assert check_url("http://meta.example/x", s, DNS).address == "169.254.169.254"
    with pytest.raises(UrlNotAllowed):
        check_url("http://192.168.0.1/x", s, DNS)


def test_is_public_table() -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address("8.8.8.8"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    for ip in ("127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "::1", "fd00::1"):
        assert not is_public(ipaddress.ip_address(ip)), ip


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/x.mp4",
        "http://10.0.0.1/x.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/x.mp4",
        "http://[::1]/x.mp4",
        "file:///etc/passwd",
    ],
)
def test_api_refuses_before_creating_a_job(api: Api, url: str) -> None:
    with api.server.client(api.keys["analyst"]) as c:
        r = c.post("/api/v1/jobs", json={"url": url})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "url_not_allowed"
        r = c.post("/api/v1/jobs", json={"url": api.media.url("/x.png"), "callback_url": url})
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "url_not_allowed"


def test_redirect_to_loopback_is_refused_on_the_hop(api: Api) -> None:
    api.media.redirects["/r/evil.mp4"] = "http://127.0.0.1:9/secret"
    api.media.redirects["/r/meta.mp4"] = "http://169.254.169.254/latest/meta-data/"
    with api.server.client(api.keys["analyst"]) as c:
        for path in ("/r/evil.mp4", "/r/meta.mp4"):
            r = c.post("/api/v1/jobs", json={"url": api.media.url(path)})
            assert r.status_code == 202, r.text
            job = wait_job(c, r.json()["job_id"])
            assert job["status"] == "failed"
            assert job["error"]["code"] == "url_not_allowed"  # type: ignore[index]


def test_redirect_loop_is_capped(api: Api) -> None:
    api.media.redirects["/loop"] = api.media.url("/loop")
    with api.server.client(api.keys["analyst"]) as c:
        job = wait_job(c, c.post("/api/v1/jobs", json={"url": api.media.url("/loop")}).json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"]["code"] == "fetch_failed"  # type: ignore[index]
    assert "redirects" in job["error"]["message"]  # type: ignore[index]


def test_redirect_within_allowed_host_is_followed(api: Api, tiny_video: bytes) -> None:
    api.media.files["/real.mp4"] = tiny_video
    api.media.redirects["/moved.mp4"] = "/real.mp4"
    with api.server.client(api.keys["analyst"]) as c:
        job = wait_job(c, c.post("/api/v1/jobs", json={"url": api.media.url("/moved.mp4")}).json()["job_id"])
    assert job["status"] == "succeeded", job

"""The web UI in a real browser (Debian's Chromium via Playwright) against a real server.

One ``veracity serve`` subprocess on loopback (embedded mode, temp data dir) serves the module;
keys are made through the API with the admin key it prints on first start. Media comes from
../shared/data/eval. Screenshots of result pages go to ``artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
FAKE_VIDEO = "eval/video/dfdc_yhffcuhhjy.mp4"  # DFDC face swap (720x1280, 10 s, audio)
REAL_VIDEO = "eval/video/sadtalker_hdtf_WDA_BobMenendez_000.mp4"  # real talking head (512x512, 8 s)
SMALL_VIDEO = "eval/video/sadtalker_result_camera_qRrq9DqY_0000__RD_Radio31_000.mp4"  # 160 kB
C2PA_IMAGE = "eval/c2pa/rs_CA.jpg"  # valid manifest with a parent ingredient
AUDIO = "eval/audio/fake/din_training_fake_lj_vits_257_.wav"  # VITS text-to-speech
LABELS = {"authentic", "suspicious", "manipulated", "synthetic", "inconclusive"}
ANALYSIS_TIMEOUT_MS = 120_000

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    data_dir: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("ui-server")
    port = _free_port()
    env = {**os.environ, "VERACITY_DATA_DIR": str(data), "VERACITY_WORKERS": "1"}
    exe = Path(sys.executable).with_name("veracity")
    proc = subprocess.Popen(
        [str(exe), "serve", "--json", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        facts = json.loads(proc.stdout.readline())
        url = facts["url"]
        assert facts["ui"] == f"{url}/ui/"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start: {proc.stdout.read()}")
            time.sleep(0.2)
        admin = facts["admin_key"]
        keys = {"admin": admin}
        for role in ("analyst", "reviewer"):
            resp = httpx.post(
                f"{url}/api/v1/keys",
                json={"role": role, "name": f"browser {role}"},
                headers={"Authorization": f"Bearer {admin}"},
                timeout=10,
            )
            assert resp.status_code in (200, 201), resp.text
            keys[role] = resp.json()["api_key"]
        yield Server(url, keys, data)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing (scripts/test.sh installs it as root)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pw = playwright_sync.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def _page(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    external: list[str] = []
    local = ("http://127.0.0.1", "data:")
    page.on("request", lambda r: None if r.url.startswith(local) else external.append(r.url))
    page.external_requests = external
    return page


def _sign_in(page: Any, server: Server, role: str) -> None:
    page.goto(f"{server.url}/ui/signin")
    page.fill("#api_key", server.keys[role])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/ui/analyze$"))


def _analyze(page: Any, path: Path) -> str:
    """Upload through the form; return the job URL once the result page is shown."""
    page.goto(page.url.split("/ui/")[0] + "/ui/analyze")
    page.set_input_files("#file", str(path))
    page.click("#analyze-submit")
    page.wait_for_url(re.compile(r".*/ui/jobs/[0-9a-f-]+$"))
    job_url: str = page.url
    page.wait_for_selector("#gauge", timeout=ANALYSIS_TIMEOUT_MS)
    return job_url


def _image_loaded(page: Any, selector: str) -> None:
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )


def test_keyboard_only_analyze_flow(server: Server, browser: Any, shared_data: Path, shots: Path) -> None:
    page = _page(browser)
    page.goto(f"{server.url}/ui/signin")
    # The key field has autofocus; typing before the browser applied it loses keys (seen once in CI).
    page.wait_for_function("document.activeElement && document.activeElement.id === 'api_key'")
    page.keyboard.type(server.keys["analyst"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/ui/analyze$"))

    def tab_to(element_id: str, limit: int = 25) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
                outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
                assert outline != "none", f"#{element_id} has no visible focus style"
                return
        pytest.fail(f"Tab never reached #{element_id}")

    page.screenshot(path=str(shots / "page_analyze.png"))
    tab_to("file")
    chooser = None
    for key in ("Space", "Enter", "Space"):  # a loaded machine can drop the first activation
        try:
            with page.expect_file_chooser(timeout=10_000) as pending:
                page.keyboard.press(key)
            chooser = pending.value
            break
        except playwright_sync.TimeoutError:
            assert page.evaluate("document.activeElement && document.activeElement.id") == "file"
    assert chooser is not None, "the file input never opened a chooser from the keyboard"
    chooser.set_files(str(shared_data / SMALL_VIDEO))
    assert "Selected:" in page.locator("#file-chosen").inner_text()
    tab_to("analyze-submit")
    page.keyboard.press("Enter")
    page.wait_for_selector("#gauge", timeout=ANALYSIS_TIMEOUT_MS)
    # The timeline is operable from the keyboard too.
    page.focus("[data-timeline]")
    page.keyboard.press("End")
    assert " s · " in page.locator("#tl-text").inner_text()
    page.context.close()


def test_analyst_cannot_open_the_audit_log(server: Server, browser: Any) -> None:
    page = _page(browser)
    _sign_in(page, server, "analyst")
    assert page.locator("nav a[href='/ui/audit']").count() == 0
    resp = page.goto(f"{server.url}/ui/audit")
    assert resp.status == 403
    assert "cannot open this page" in page.locator("main").inner_text()
    assert page.locator("#audit-table").count() == 0
    page.context.close()


@pytest.mark.parametrize(
    ("name", "rel", "section"),
    [
        ("real_video", REAL_VIDEO, "#timeline svg"),
        ("c2pa_image", C2PA_IMAGE, "#prov-state"),
        ("audio", AUDIO, "#detectors"),
    ],
)
def test_result_screenshots(
    server: Server, browser: Any, shared_data: Path, shots: Path, name: str, rel: str, section: str
) -> None:
    page = _page(browser)
    _sign_in(page, server, "analyst")
    _analyze(page, shared_data / rel)
    assert page.locator(".verdict-line .badge").get_attribute("data-label") in LABELS
    assert page.locator(section).count() >= 1
    if name == "audio":
        assert "No face was tracked." in page.locator("#faces").inner_text()
        # synthetic_speech v2 scores speech windows: an audio file has a timeline of window scores
        assert "synthetic_speech" in page.locator("#timeline").inner_text()
    page.screenshot(path=str(shots / f"result_{name}.png"), full_page=True)
    assert page.external_requests == []
    page.context.close()


def test_upload_progress_verdict_timeline_heatmap_review_audit(
    server: Server, browser: Any, shared_data: Path, shots: Path
) -> None:
    page = _page(browser)
    _sign_in(page, server, "reviewer")
    page.set_input_files("#file", str(shared_data / FAKE_VIDEO))
    page.click("#analyze-submit")
    page.wait_for_url(re.compile(r".*/ui/jobs/[0-9a-f-]+$"))
    job_url = page.url
    job_id = job_url.rsplit("/", 1)[1]

    # Progress: the job page follows the job by polling until the result replaces it.
    assert page.locator("#job-progress").count() == 1
    page.screenshot(path=str(shots / "page_progress.png"))
    seen: set[str] = set()
    deadline = time.monotonic() + ANALYSIS_TIMEOUT_MS / 1000
    while page.locator("#gauge").count() == 0:
        assert time.monotonic() < deadline, f"no result after {ANALYSIS_TIMEOUT_MS} ms; stages seen {seen}"
        stage = page.locator("#job-stage")
        if stage.count():
            with contextlib.suppress(playwright_sync.Error):  # the page may turn into the result meanwhile
                seen.add(stage.inner_text(timeout=1_000).strip())
        time.sleep(0.2)
    assert seen, "the progress page never showed a stage"

    # Verdict: gauge, label and plain-language text.
    label = page.locator(".verdict-line .badge").get_attribute("data-label")
    assert label in LABELS
    assert re.fullmatch(r"\d\.\d\d|—", (page.locator("#score-text").text_content() or "").strip())
    assert page.locator("#detectors article.det").count() >= 3

    # Timeline: at least one detector series; pointing at it shows the frame from kept media.
    assert page.locator("#timeline svg polyline").count() >= 1
    chart = page.locator("[data-timeline]")
    chart.scroll_into_view_if_needed()  # a longer verdict block can push it below the viewport
    box = chart.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
    page.wait_for_selector("#tl-frame:not([hidden])")
    _image_loaded(page, "#tl-frame")
    assert " s · " in page.locator("#tl-text").inner_text()

    # Face heatmap (when the learned face detector supplied one), else the crop viewer.
    heat = page.locator("button.crop.heatmap")
    crop = heat.first if heat.count() else page.locator("button.crop").first
    crop.click()
    page.wait_for_selector("#crop-dialog[open]")
    _image_loaded(page, "#crop-img")
    if heat.count() and heat.first.get_attribute("data-heatmap"):
        _image_loaded(page, "#crop-heat")
    page.screenshot(path=str(shots / ("heatmap_viewer.png" if heat.count() else "crop_viewer.png")))
    page.keyboard.press("Escape")
    page.wait_for_selector("#crop-dialog:not([open])", state="attached")
    page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.4)
    page.screenshot(path=str(shots / "result_fake_video.png"), full_page=True)

    # The HTML report and JSON links work with the session cookie.
    assert page.request.get(server.url + page.locator("#link-report").get_attribute("href")).status == 200
    report = page.request.get(server.url + page.locator("#link-json").get_attribute("href")).json()
    assert report["label"] == label

    # Review: ground truth + comment, shown back on the page.
    page.check("input[name=ground_truth][value=manipulated]")
    page.fill("#comment", "face boundary flickers near the jaw")
    page.click(".review-form button[type=submit]")
    page.wait_for_url(re.compile(r".*#review$"))
    assert page.locator("#current-review .badge").get_attribute("data-label") == "manipulated"
    assert "flickers near the jaw" in page.locator("#current-review").inner_text()
    assert page.external_requests == []

    # The admin sees the review in the audit log.
    admin = _page(browser)
    _sign_in(admin, server, "admin")
    admin.click("nav a[href='/ui/audit']")
    rows = admin.locator("#audit-table tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    reviewed = [t for t in texts if "job.reviewed" in t and job_id in t]
    assert reviewed, texts[:5]
    assert "manipulated" in reviewed[0]
    admin.screenshot(path=str(shots / "page_audit.png"))
    for slug in ("history", "review", "keys"):
        admin.click(f"nav a[href='/ui/{slug}']")
        admin.wait_for_url(re.compile(f".*/ui/{slug}$"))
        admin.screenshot(path=str(shots / f"page_{slug}.png"))
    history = admin.goto(f"{server.url}/ui/history?q={FAKE_VIDEO.rsplit('/', 1)[1][:8]}&reviewed=yes")
    assert history.status == 200
    assert admin.locator("#history-table tbody tr").count() == 1
    admin.context.close()
    page.context.close()


def test_artifacts_are_ignored_by_git() -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "check-ignore", "-q", "artifacts/screenshots/x.png"], cwd=REPO, capture_output=True, check=False
    )
    assert out.returncode == 0

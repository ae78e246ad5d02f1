"""Settings from the environment: every field has its VERACITY_ variable (the names the docs and
deployments use), defaults are written once, and an analysis gets only the analysis part."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veracity.config import AnalysisSettings, Limits, ServiceSettings, Settings, env_names
from veracity.errors import ConfigError

# The variables deployments and docs already use; renaming one breaks them.
KNOWN = {
    "MAX_BYTES", "MAX_PIXELS", "MAX_DURATION_S", "MAX_FRAMES", "MAX_IMAGE_SIDE", "MAX_DECODE_S", "ONNX_THREADS",
    "CROP_THREADS",
    "CACHE_DIR", "DATA_DIR", "DATABASE_URL", "TRUST_ANCHORS", "ENV", "BROKER_URL", "QUEUE", "STORAGE_DIR",
    "SYNC_WAIT_S", "WORKERS", "RATE_LIMIT_PER_MIN", "URL_ALLOWLIST", "FETCH_TIMEOUT_S", "FETCH_MAX_REDIRECTS",
    "WEBHOOK_SECRET", "AUDIT_KEY", "AUDIT_KEY_FILE", "WEBHOOK_RETRIES", "WEBHOOK_BACKOFF_S", "KEEP_MEDIA",
    "JOB_STALE_S", "JOB_BUDGET_S", "JOB_BUDGET_PER_MEDIA_S", "JOB_MAX_ATTEMPTS", "HTTP_HEADER_TIMEOUT_S",
    "HTTP_BODY_IDLE_S", "HTTP_BODY_GRACE_S", "HTTP_BODY_MIN_RATE", "ORPHAN_AGE_S", "ESCALATE_FAST",
    "LOW_MEMORY",
}


def test_every_variable_keeps_its_name() -> None:
    assert {n.removeprefix("VERACITY_") for n in env_names()} == KNOWN


def test_an_empty_environment_gives_the_defaults() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({f"VERACITY_{n}": "" for n in KNOWN}) == Settings()  # empty means unset


def test_values_are_parsed_by_type_and_floored() -> None:
    s = Settings.from_env({
        "VERACITY_MAX_FRAMES": "50", "VERACITY_MAX_DECODE_S": "2.5", "VERACITY_ONNX_THREADS": "0",
        "VERACITY_WORKERS": "3.7", "VERACITY_CACHE_DIR": "/c", "VERACITY_TRUST_ANCHORS": "/a.pem",
        "VERACITY_QUEUE": "q1", "VERACITY_ENV": "production", "VERACITY_KEEP_MEDIA": "yes",
        "VERACITY_URL_ALLOWLIST": " a, ,b ", "VERACITY_JOB_BUDGET_S": "0", "VERACITY_WEBHOOK_SECRET": "s" * 32,
    })
    assert s.limits == Limits(max_frames=50, max_decode_s=2.5)
    assert (s.onnx_threads, s.workers, s.job_budget_s) == (1, 3, 0.1)  # raised to their floors
    assert (s.cache_dir, s.trust_anchors) == (Path("/c"), Path("/a.pem"))
    assert (s.queue_name, s.environment, s.keep_media, s.url_allowlist) == ("q1", "production", True, ("a", "b"))


def test_a_bad_number_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="VERACITY_WORKERS must be a number"):
        Settings.from_env({"VERACITY_WORKERS": "many"})
    with pytest.raises(ConfigError, match="max_frames must be positive"):
        Settings.from_env({"VERACITY_MAX_FRAMES": "-1"})


def test_the_analysis_part_carries_no_service_field() -> None:
    s = Settings(cache_dir=Path("/c"), webhook_secret="x" * 32, audit_key="k")
    part = s.analysis
    assert type(part) is AnalysisSettings and part.cache_dir == Path("/c")
    assert not hasattr(part, "webhook_secret") and not hasattr(part, "audit_key")
    assert set(type(part).model_fields) < set(type(s).model_fields)
    assert part.analysis == part


def test_the_analyzer_hands_detectors_only_the_analysis_part() -> None:
    from veracity.pipeline import Analyzer

    analyzer = Analyzer(Settings(webhook_secret="x" * 32))
    assert type(analyzer.settings) is AnalysisSettings


def test_bad_values_are_one_line_config_errors_naming_the_variable() -> None:
    cases = {
        "VERACITY_KEEP_MEDIA": "maybe", "VERACITY_FETCH_TIMEOUT_S": "soon", "VERACITY_MAX_FRAMES": "lots",
        "VERACITY_MAX_BYTES": "0", "VERACITY_JOB_BUDGET_S": "nan", "VERACITY_ONNX_THREADS": "two",
    }
    for name, raw in cases.items():
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({name: raw})
        message = str(caught.value)
        assert name in message and "\n" not in message, message
        assert caught.value.exit_code == 2  # what the CLI exits with


def test_keyword_construction_is_validated_and_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_WORKERS", "7")
    monkeypatch.setenv("VERACITY_DATA_DIR", "/elsewhere")
    assert Settings(cache_dir=Path("/c")).workers is None  # only from_env reads the environment
    assert Settings.from_env().workers == 7 and Settings.from_env().data_dir == Path("/elsewhere")
    with pytest.raises(ConfigError, match="VERACITY_WORKERS must be a number"):
        Settings(workers="many")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="wrokers"):
        Settings(wrokers=2)  # type: ignore[call-arg]


def test_no_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("VERACITY_WORKERS=9\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({}).workers is None


def test_embedded_workers_follow_the_cpus_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset: min(2, CPUs), read when asked (the settings object is the same on every machine)."""
    for cpus, want in ((1, 1), (2, 2), (16, 2), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda cpus=cpus: cpus)
        assert Settings().embedded_workers == want
    assert Settings(workers=5).embedded_workers == 5
    assert Settings.from_env({"VERACITY_WORKERS": "1"}).embedded_workers == 1
    assert Settings.from_env({"VERACITY_WORKERS": "0"}).embedded_workers == 1  # raised to the floor


def test_settings_are_immutable_and_copied_with_validation() -> None:
    s = Settings(workers=2)
    with pytest.raises(ValueError, match="frozen"):
        s.workers = 3
    t = s.with_(workers=4, environment="production")
    assert (s.workers, t.workers, t.environment) == (2, 4, "production") and type(t) is Settings
    with pytest.raises(ConfigError, match="VERACITY_WORKERS"):
        s.with_(workers="x")


def test_the_analysis_part_holds_no_secret_and_the_service_part_no_analysis_field() -> None:
    s = Settings.from_env({"VERACITY_WEBHOOK_SECRET": "w" * 32, "VERACITY_AUDIT_KEY": "a" * 32})
    part = s.analysis
    dumped = repr(part) + str(part.model_dump())
    assert "w" * 32 not in dumped and "a" * 32 not in dumped
    assert "w" * 32 not in repr(s)  # secrets stay out of logs even on the whole object
    service = s.service
    assert type(service) is ServiceSettings and service.webhook_secret == "w" * 32
    assert not set(ServiceSettings.model_fields) & set(AnalysisSettings.model_fields)
    assert set(ServiceSettings.model_fields) | set(AnalysisSettings.model_fields) == set(Settings.model_fields)


def test_shown_path_writes_the_home_folder_as_tilde() -> None:
    from pathlib import Path

    from veracity.config import shown_path

    assert shown_path(Path.home() / ".cache" / "veracity" / "x.jsonl") == "~/.cache/veracity/x.jsonl"
    assert shown_path("../shared/data") == "../shared/data"
    assert shown_path(str(Path.home()) + "other/x") == str(Path.home()) + "other/x"  # a sibling, not home

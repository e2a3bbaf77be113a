"""Deployment settings: defaults < `earshot.toml` in the data dir < `EARSHOT_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATA_DIR = Path("earshot-data")
SETTINGS_FILE = "earshot.toml"


class Settings(BaseSettings):
    """Every knob of a deployment. Paths default to places inside `data_dir`."""

    model_config = SettingsConfigDict(env_prefix="EARSHOT_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None

    # Pluggable services, chosen here and nowhere else.
    blob_store: Literal["local"] = "local"
    key_provider: Literal["local"] = "local"
    task_runner: Literal["inline", "celery"] = "inline"
    celery_broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    celery_queue: str = "earshot"
    background_jobs: bool = True  # audit checkpoints and retention sweeps in serve/worker processes

    # Intake.
    sample_rate: float = Field(0.01, ge=0.0, le=1.0)
    daily_cap_per_customer: int = Field(20, ge=0)
    max_upload_bytes: int = 50 * 1024 * 1024
    max_duration_s: float = 600.0

    # Pipeline.
    max_snippet_s: float = 10.0
    # "whisper": faster-whisper tiny.en (default); "pocketsphinx": the offline fallback (less accurate)
    asr_backend: Literal["whisper", "pocketsphinx"] = "whisper"
    asr_model_path: Path | None = None
    asr_model_sha256: str | None = None
    # Threads of one pipeline process (ASR replicas and voice change); `earshot worker` shares
    # the cores out between its processes unless this is set.
    asr_threads: int = 2
    # Whisper base re-hears snippets where a PII cue meets unsure words (pipeline.second_opinion)
    second_opinion: bool = True
    # ... and every snippet of a band-limited (telephone) recording with a word tiny.en was
    # unsure of, where no cue shows what it misheard (docs/deid-pipeline.md, "Telephone-band
    # speech")
    second_opinion_telephone: bool = True

    # Review queue (read by review.policy.ReviewPolicy.from_settings).
    review_customer_window_days: float = Field(30.0, ge=0)
    review_lease_minutes: float = Field(10.0, gt=0)
    review_quota_per_hour: int = Field(120, ge=1)
    review_quota_per_shift: int = Field(600, ge=1)
    review_shift_hours: float = Field(8.0, gt=0)
    review_gold_rate: float = Field(0.05, ge=0.0, le=1.0)
    review_gold_pass_wer: float = Field(0.2, ge=0.0)
    review_adjudication_wer: float = Field(0.25, ge=0.0)
    review_adjudication_grade_spread: int = Field(2, ge=0)

    # Accounts and sessions.
    enrol_link_ttl_hours: float = 24.0
    session_idle_minutes: float = 15.0
    session_absolute_hours: float = 12.0
    base_url: str = "http://127.0.0.1:8000"
    # Access control (issue 4; ASVS 5.0 V6-V8). Client addresses come from the socket, or from
    # X-Forwarded-For only when the socket peer is one of `trusted_proxies`.
    trusted_proxies: list[str] = []
    allowed_countries: list[str] = ["IE", "DE", "US"]
    passkey_required_roles: list[str] = []  # roles that must sign in with a passkey (phishing resistant)
    reauth_minutes: float = 10.0  # sensitive actions need an authentication this recent
    lockout_account_failures: int = 5  # consecutive failures before an account is locked
    lockout_address_failures: int = 20  # failures from one address before it is locked
    lockout_minutes: float = 15.0
    concurrent_login: Literal["end_previous", "refuse"] = "end_previous"
    webauthn_rp_id: str | None = None  # default: the host of base_url
    webauthn_rp_name: str = "Earshot"
    host: str = "127.0.0.1"
    port: int = 8000
    # Customer rights and retention (issue 7; GDPR Art. 5(1)(e), 7, 17, 30).
    consent_text_version: str = "2026-01"  # the consent text currently shown to customers
    retention_after_consolidation_days: float = Field(30.0, ge=0)  # snippet audio, after grading
    retention_max_age_days: float = Field(180.0, ge=0)  # everything about a snippet or recording
    retention_interval_s: float = Field(3600.0, gt=0)  # how often the scheduled sweeper runs
    controller_name: str = "(set controller_name in earshot.toml)"  # for the Art. 30 record
    controller_contact: str = "(set controller_contact in earshot.toml)"
    dpo_contact: str = "(set dpo_contact in earshot.toml)"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        data_dir = Path(os.environ.get("EARSHOT_DATA_DIR", DEFAULT_DATA_DIR))
        init_kwargs = getattr(init_settings, "init_kwargs", {})
        init_dir = init_kwargs.get("data_dir")
        if init_dir is not None:
            data_dir = Path(init_dir)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=data_dir / SETTINGS_FILE)
        return (init_settings, env_settings, toml)

    @property
    def resolved_database_url(self) -> str:
        """The configured database, or a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'earshot.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_cores(settings: Settings, processes: int, cores: int) -> Settings:
    """`settings` for one of `processes` pipeline processes on `cores` cores: unless `asr_threads`
    was set explicitly, each gets its share (at least one), so that together they never run more
    pipeline threads than there are cores (measured in bench/deid_workers.py)."""
    if "asr_threads" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"asr_threads": max(1, cores // max(1, processes))})


def load_settings(data_dir: Path | str | None = None, **overrides: object) -> Settings:
    """Build settings for `data_dir` (or `EARSHOT_DATA_DIR`, or `./earshot-data`)."""
    if data_dir is not None:
        overrides["data_dir"] = Path(data_dir)
    return Settings(**overrides)  # type: ignore[arg-type]


def write_settings_file(settings: Settings, values: dict[str, object]) -> None:
    """Persist deployment choices (such as the demo's sampling rate) in the data dir's TOML."""
    path = settings.data_dir / SETTINGS_FILE
    lines = []
    for key, value in values.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int | float):
            lines.append(f"{key} = {value}")
        else:
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{key} = "{escaped}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")

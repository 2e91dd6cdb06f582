"""Typed configuration models. Unknown keys are errors; units are in option names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloudsoc.config.bastion import BastionConfig
from cloudsoc.config.feeds import FeedConfig
from cloudsoc.config.outputs import OutputConfig

Format = Literal["auto", "actiontrail", "cloudtrail", "ndjson", "ecs"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Model):
    """Where events, dead letters and checkpoints are kept."""

    type: Literal["duckdb"] = Field("duckdb", description="Storage backend. `duckdb` is the embedded default.")
    path: str = Field(
        "events.duckdb", description="DuckDB file; relative paths are resolved against the home directory."
    )
    retention_days: int | None = Field(
        None, gt=0, description="Drop events older than this many days (by event time). Unset keeps everything."
    )
    max_event_bytes: int = Field(
        1_048_576,
        gt=0,
        description="An event whose JSON document is larger than this is dead-lettered instead of stored.",
    )
    threads: int | None = Field(None, gt=0, description="DuckDB worker threads (default: all cores).")
    memory_limit_mb: int | None = Field(None, gt=0, description="DuckDB memory limit in MiB.")


class PipelineConfig(_Model):
    """Batching between inputs and storage."""

    batch_max_events: int = Field(20_000, gt=0, description="Write a batch once it holds this many records.")
    batch_max_secs: float = Field(1.0, gt=0, description="Write a batch at least this often while data flows.")
    queue_max_batches: int = Field(8, gt=0, description="Back-pressure: inputs wait when this many batches are queued.")
    workers: int | None = Field(
        None,
        gt=0,
        description="Parser processes (default: 1, parsing inside the main process, below 4 cores; else cores - 1).",
    )


class DirectoryInputConfig(_Model):
    """Watch a directory tree (local disk, or a bucket mounted with ossfs/s3fs) by polling."""

    type: Literal["directory"] = Field(description="`directory`: poll a directory tree or bucket mount.")
    path: Path = Field(description="Root of the tree, e.g. the mount point of the log bucket.")
    format: Format = Field(
        "auto",
        description="Record format; `auto` detects CloudTrail/ActionTrail per record; `ecs`: NDJSON of ECS documents.",
    )
    include: list[str] = Field(
        default_factory=lambda: ["*.gz", "*.json", "*.jsonl", "*.ndjson"],
        description="File-name glob patterns to read.",
    )
    poll_secs: float = Field(30.0, gt=0, description="How often to look for new files.")
    stable_secs: float = Field(
        10.0, ge=0, description="A file is read only after its size and mtime stayed the same this long."
    )
    incomplete_timeout_secs: float = Field(
        900.0,
        gt=0,
        description="A stable file whose gzip/JSON is still incomplete after this long is read as it is "
        "(its broken tail is dead-lettered).",
    )
    full_rescan_secs: float = Field(
        3600.0,
        gt=0,
        description="How often to walk the whole tree (new accounts/regions); between walks only the newest "
        "date folders are listed.",
    )


InputConfig = Annotated[DirectoryInputConfig, Field(discriminator="type")]


class DetectionConfig(_Model):
    """Which rules run on every batch (and in `cloudsoc detect` / `hunt`), and their shared settings."""

    enabled: bool = Field(True, description="Run detection in the pipeline (ingest and run).")
    builtin: bool = Field(True, description="Load the built-in cloud rule pack.")
    rules: list[Path] = Field(
        default_factory=list,
        description="Sigma and ElastAlert rule files or directories (searched recursively for *.yml/*.yaml; "
        "`*.tests.yml` files are rule tests, not rules).",
    )
    disabled: list[str] = Field(
        default_factory=list,
        description="Rule ids (glob patterns, e.g. `console_login_without_mfa.*`) not to run. A rule switched on or "
        "off in the console (kept in `alerts.db`) overrides this.",
    )
    learning_days: float = Field(
        3.0,
        ge=0,
        description="First-seen rules stay quiet for this long (event time) after a key first appears (long enough "
        "to see a working week's sources, short enough that a leaked key used in the first week still alerts).",
    )
    intel_min_confidence: int = Field(
        60, ge=0, le=100, description="`threat_intel_*` rules fire on indicators with at least this confidence."
    )
    state_save_secs: float = Field(
        30.0, gt=0, description="How often the daemon saves rule state (windows, first-seen baselines)."
    )


class WhoisConfig(_Model):
    """Whois context for domain indicators (`intel lookup`, enrichments): cached, fetched off the hot path."""

    enabled: bool = Field(True, description="Look domains up in whois. Off: no whois queries at all.")
    server: str | None = Field(
        None,
        description="Ask only this whois server (`host` or `host:port`), e.g. a company proxy. Unset: the "
        "registry's server for each TLD (TCP port 43 must be reachable).",
    )
    timeout_secs: float = Field(10.0, gt=0, description="Timeout of one whois query.")
    ttl_hours: float = Field(168.0, gt=0, description="How long a whois answer is cached.")
    unknown_ttl_minutes: float = Field(
        60.0, gt=0, description="How long to wait before asking again after no answer (offline, refused)."
    )
    fetch_secs: float = Field(30.0, gt=0, description="How often the daemon fetches domains the enricher wanted.")
    fetch_batch: int = Field(20, ge=1, description="Domains fetched per round (registries rate-limit whois).")


class IntelConfig(_Model):
    """Threat-intel settings beside the feeds."""

    whois: WhoisConfig = Field(default_factory=WhoisConfig)


class ConsoleConfig(_Model):
    """The web console and HTTP API (`cloudsoc serve`)."""

    host: str = Field(
        "127.0.0.1", description="Address to listen on. Keep loopback and put a TLS reverse proxy in front."
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    session_hours: float = Field(12.0, gt=0, description="A login session ends this long after it began.")
    idle_minutes: float = Field(60.0, gt=0, description="A login session ends after this long without a request.")
    login_max_failures: int = Field(5, ge=1, description="Failed log-ins in a row after which the account is locked.")
    lockout_minutes: float = Field(15.0, gt=0, description="How long a locked account stays locked.")
    ip_max_failures: int = Field(
        20, ge=1, description="Failed log-ins from one address within lockout_minutes before it must wait."
    )
    timezone: str | None = Field(
        None, description="Time zone pages show times in (IANA name, e.g. Asia/Shanghai). Default: the machine's."
    )
    language: Literal["en", "zh"] = Field("en", description="Default UI language (`en` or `zh`); users can switch.")
    trusted_proxy: bool = Field(
        False,
        description="Take the client address and scheme from X-Forwarded-For/-Proto (only behind your own proxy).",
    )


class Config(_Model):
    """The whole cloudsoc configuration file."""

    home: Path | None = Field(
        None, description="State directory (store, checkpoints). Overridden by --home / CLOUDSOC_HOME."
    )
    storage: StorageConfig = Field(default_factory=StorageConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    inputs: dict[str, InputConfig] = Field(default_factory=dict, description="Inputs by name.")
    detection: DetectionConfig = Field(default_factory=DetectionConfig)
    feeds: dict[str, FeedConfig] = Field(
        default_factory=dict,
        description="Threat-intel feeds the daemon syncs into the indicator store (http, misp_feed, taxii).",
    )
    intel: IntelConfig = Field(default_factory=IntelConfig)
    outputs: dict[str, OutputConfig] = Field(
        default_factory=dict,
        description="Alert outputs by name (webhook, dingtalk, wecom, feishu, slack, email, script).",
    )
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    bastion: BastionConfig = Field(default_factory=BastionConfig)

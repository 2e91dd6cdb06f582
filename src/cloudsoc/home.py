"""The home directory: all state of one cloudsoc installation lives under it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudsoc.config.models import Config, StorageConfig

if TYPE_CHECKING:
    from cloudsoc.intel.whois_cache import WhoisService
    from cloudsoc.outputs.dispatcher import Dispatcher
    from cloudsoc.pipeline.detection import DetectionStage
    from cloudsoc.storage.alerts import AlertStore
    from cloudsoc.storage.duckdb import DuckdbStorage

DEFAULT_HOME = Path("cloudsoc-data")


class Home:
    """Resolves the home (``--home`` > ``CLOUDSOC_HOME`` > config ``home`` > ``./cloudsoc-data``) and opens stores."""

    def __init__(self, explicit: Path | None = None, config: Config | None = None) -> None:
        env = os.environ.get("CLOUDSOC_HOME")
        if explicit is not None:
            self.path = explicit
        elif env:
            self.path = Path(env)
        elif config is not None and config.home is not None:
            self.path = config.home
        else:
            self.path = DEFAULT_HOME
        self.storage_config = config.storage if config is not None else StorageConfig()
        self.config = config if config is not None else Config()

    @property
    def store_path(self) -> Path:
        p = Path(self.storage_config.path)
        return p if p.is_absolute() else self.path / p

    def open_storage(self, *, read_only: bool = False) -> DuckdbStorage:
        from cloudsoc.storage.duckdb import DuckdbStorage  # DuckDB and Arrow load only for commands that use them

        cfg = self.storage_config
        if not read_only:
            self.path.mkdir(parents=True, exist_ok=True)
        return DuckdbStorage(
            self.store_path,
            read_only=read_only,
            max_event_bytes=cfg.max_event_bytes,
            threads=cfg.threads,
            memory_limit_mb=cfg.memory_limit_mb,
        )

    @property
    def intel_path(self) -> Path:
        """The indicator store (``cloudsoc intel import`` fills it; the pipeline enriches events from it)."""
        from cloudsoc.intel.store import INTEL_FILE

        return self.path / INTEL_FILE

    def whois(self) -> WhoisService | None:
        """Whois look-ups with this home's cache, as configured (`intel.whois`); None when turned off."""
        from datetime import timedelta

        from cloudsoc.intel.whois import WhoisClient
        from cloudsoc.intel.whois_cache import WhoisCache, WhoisService

        cfg = self.config.intel.whois
        if not cfg.enabled:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        return WhoisService(
            WhoisCache.beside(self.intel_path),
            WhoisClient(cfg.server, timeout_secs=cfg.timeout_secs),
            ttl=timedelta(hours=cfg.ttl_hours),
            unknown_ttl=timedelta(minutes=cfg.unknown_ttl_minutes),
        )

    def open_alerts(self) -> AlertStore:
        from cloudsoc.storage.alerts import ALERTS_FILE, AlertStore

        return AlertStore(self.path / ALERTS_FILE)

    def detection_stage(self) -> DetectionStage | None:
        """The pipeline's detection stage with this home's alert store, or None when detection is off."""
        from cloudsoc.pipeline.detection import DetectionStage

        if not self.config.detection.enabled:
            return None
        stage = DetectionStage(self.config.detection, self.open_alerts(), intel_path=str(self.intel_path))
        stage.dispatcher = self.dispatcher(stage)
        return stage

    def dispatcher(self, stage: DetectionStage) -> Dispatcher | None:
        """Alert delivery for the configured outputs and those the loaded rules bring (ElastAlert alerters)."""
        from pydantic import TypeAdapter, ValidationError

        from cloudsoc.config.outputs import OutputConfig
        from cloudsoc.errors import ConfigError
        from cloudsoc.outputs.dispatcher import Dispatcher

        configs: dict[str, Any] = dict(self.config.outputs)
        adapter: TypeAdapter[Any] = TypeAdapter(OutputConfig)
        for name, raw in stage.loaded.outputs.items():
            try:
                configs[name] = adapter.validate_python(raw)
            except ValidationError as exc:
                first = exc.errors(include_input=False, include_url=False)[0]
                where = ".".join(map(str, first["loc"]))
                raise ConfigError(f"rule output {name}: {where}: {first['msg']}") from None
        if not configs or stage.store is None:
            return None
        return Dispatcher.from_config(configs, stage.store.outbox)

"""The typed columns of the event table: core ECS fields promoted out of the stored document.

Every other field is reached inside the full document (column ``doc``, DuckDB JSON) by its ECS path.
The query compiler and the Arrow encoder both read this table, so a new column is added in one place.
"""

from __future__ import annotations

from typing import Final

# ECS field -> (column name, DuckDB type). Order is the table's column order after ``ts``.
COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "@timestamp": ("ts", "TIMESTAMP"),
    "event.id": ("event_id", "VARCHAR"),
    "event.action": ("event_action", "VARCHAR"),
    "event.provider": ("event_provider", "VARCHAR"),
    "event.outcome": ("event_outcome", "VARCHAR"),
    "event.dataset": ("event_dataset", "VARCHAR"),
    "cloud.provider": ("cloud_provider", "VARCHAR"),
    "cloud.region": ("cloud_region", "VARCHAR"),
    "cloud.account.id": ("cloud_account_id", "VARCHAR"),
    "cloud.service.name": ("cloud_service_name", "VARCHAR"),
    "source.ip": ("source_ip", "VARCHAR"),
    "source.address": ("source_address", "VARCHAR"),
    "user.name": ("user_name", "VARCHAR"),
    "user.id": ("user_id", "VARCHAR"),
    "user_agent.original": ("user_agent", "VARCHAR"),
    "error.code": ("error_code", "VARCHAR"),
}

# source.ip as a 128-bit number (IPv4 mapped into ::ffff:0:0/96) so CIDR queries are integer ranges.
SOURCE_IP_NUM: Final = ("source_ip_num", "UHUGEINT")
# The full ECS document as JSON text written by orjson (VARCHAR: DuckDB's JSON type would re-validate every
# document on insert; zstd: documents repeat a lot and it is cheaper to write); the ingest time.
DOC: Final = ("doc", "VARCHAR USING COMPRESSION zstd")
INGESTED: Final = ("ingested", "TIMESTAMP")

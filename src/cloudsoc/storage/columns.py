"""The typed columns of stored events: core ECS fields promoted out of the stored document.

Every other field is reached inside the full document (column ``doc``, JSON text) by its ECS path.
The query compiler, the encoder and the store all read this module, so a new column is added in one place.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

# ECS field -> (column name, DuckDB type). Order is the column order of the events view.
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

# source.ip as a 128-bit number (IPv4 mapped into ::ffff:0:0/96) so CIDR queries are integer ranges. Parquet
# has no 128-bit integer, so segments hold two unsigned 64-bit halves and the events view joins them.
SOURCE_IP_NUM: Final = ("source_ip_num", "UHUGEINT")
SOURCE_IP_HALVES: Final = ("source_ip_hi", "source_ip_lo")
# The full ECS document as JSON text written by orjson; the ingest time.
DOC: Final = ("doc", "VARCHAR")
INGESTED: Final = ("ingested", "TIMESTAMP")

# The Arrow schema of a segment file.
SEGMENT_SCHEMA: Final = pa.schema(
    [
        pa.field("ts", pa.timestamp("us")),
        *(pa.field(col, pa.string()) for col, _t in list(COLUMNS.values())[1:]),
        pa.field(SOURCE_IP_HALVES[0], pa.uint64()),
        pa.field(SOURCE_IP_HALVES[1], pa.uint64()),
        pa.field(DOC[0], pa.string()),
        pa.field(INGESTED[0], pa.timestamp("us")),
    ]
)

"""Typed configuration of threat-intel feeds (``feeds.<name>`` in the config file), one model per feed ``type``.

Feed URLs often carry an API key in their query and TAXII servers want a password, so URLs, header values and
passwords are ``SecretStr``: a printed or logged config shows ``**********``; write them as ``${ENV_NAME}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from cloudsoc.config.outputs import SecretUrl

if TYPE_CHECKING:
    from cloudsoc.intel.feeds.detect import ListOptions

# Importers an HTTP feed may name (``misp_feed`` has its own feed type: it is a folder of files, not one file).
HttpFormat = Literal["auto", "stix", "misp", "csv_map", "plain", "ipsum", "maltrail", "feodo"]


class _Feed(BaseModel):
    """Options every feed has: where its indicators are attributed, how often and how patiently it is fetched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(
        None, min_length=1, description="Source name the indicators are stored under. Unset: the feed's name."
    )
    interval_secs: float = Field(3600.0, gt=0, description="Seconds between two syncs of this feed.")
    timeout_secs: float = Field(30.0, gt=0, description="Timeout of one HTTP request (connect, send and read).")
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate. Turn off only for tests.")


class HttpFeedConfig(_Feed):
    type: Literal["http"] = Field(description="`http`: one file over HTTP(S) (a list, CSV, STIX bundle, MISP event).")
    url: SecretUrl = Field(description="http(s) URL of the file; may carry an API key, so it is never printed.")
    format: HttpFormat = Field(
        "auto", description="Importer of the file: `auto` (told from its content) or an importer name."
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (e.g. an API key header); values are secret."
    )
    confidence: int = Field(
        50, ge=0, le=100, description="Confidence of the values of a plain list or CSV file (they give none)."
    )
    intel_types: list[str] = Field(
        default_factory=list, description="What the values of a plain list or CSV file are (c2, scanner, …)."
    )
    columns: dict[str, Any] | None = Field(
        None,
        description="CSV column mapping: `values` (column → ip, domain, url, sha256, … or auto), `first_seen`, "
        "`last_seen`, `confidence`, `tags`, `description`, `delimiter`.",
    )

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            import msgspec

            from cloudsoc.intel.feeds.csv_map import ColumnMap

            try:
                msgspec.convert(value, ColumnMap)
            except msgspec.ValidationError as exc:
                raise ValueError(str(exc)) from None
        return value

    def list_options(self) -> ListOptions:
        import msgspec

        from cloudsoc.intel.feeds.csv_map import ColumnMap
        from cloudsoc.intel.feeds.detect import ListOptions

        columns = msgspec.convert(self.columns, ColumnMap) if self.columns is not None else None
        return ListOptions(confidence=self.confidence, intel_types=tuple(self.intel_types), columns=columns)


class MispFeedConfig(_Feed):
    type: Literal["misp_feed"] = Field(
        description="`misp_feed`: a MISP feed folder over HTTP(S): `manifest.json`, then only new or changed "
        "`<uuid>.json` event files."
    )
    url: SecretUrl = Field(description="http(s) URL of the feed folder (the one holding `manifest.json`).")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Extra request headers (e.g. `Authorization`); values are secret."
    )


class TaxiiFeedConfig(_Feed):
    type: Literal["taxii"] = Field(
        description="`taxii`: a TAXII 2.1 collection, read incrementally (`added_after` the last object seen)."
    )
    url: SecretUrl = Field(description="URL of the server's discovery endpoint or of an API root.")
    collection: str = Field(min_length=1, description="Id or title of the collection to read.")
    user: str | None = Field(None, description="User name for HTTP basic authentication.")
    password: SecretStr | None = Field(None, description="Password for HTTP basic authentication.")
    per_request: int = Field(1000, ge=1, le=100_000, description="Objects asked for per page (servers may cap it).")


FeedConfig = Annotated[HttpFeedConfig | MispFeedConfig | TaxiiFeedConfig, Field(discriminator="type")]

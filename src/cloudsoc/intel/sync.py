"""Scheduled sync of configured feeds into the indicator store, with per-feed state and status.

Each feed is fetched over HTTP(S) (conditional GET with ETag / Last-Modified: a 304 is "unchanged"), as a MISP
feed folder (manifest, then only new or changed events) or as a TAXII 2.1 collection (``added_after`` the last
object seen). Its state (validators, cursors) and status (last attempt, last success, last error, counts) live in
the ``feed_state`` table of the indicator store's own SQLite file, so ``intel feeds list`` in another process
sees them.

A feed that fails (network, HTTP 4xx/5xx, a body no importer reads) records why and keeps its previous state, so
the next sync retries it in full; it never raises out of :meth:`FeedSync.sync` or :meth:`FeedSync.sync_all`, and
never stops the other feeds. Messages never hold secrets: URLs are shown without credentials and with query
values masked, and every configured secret is scrubbed from what servers and libraries say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Final, Literal
from uuid import uuid4

import httpx
import msgspec
import orjson
from pydantic import BaseModel, SecretStr

from cloudsoc.config.feeds import FeedConfig, HttpFeedConfig, MispFeedConfig, TaxiiFeedConfig
from cloudsoc.errors import CloudsocError, ParseError
from cloudsoc.intel.feeds.base import ImportResult
from cloudsoc.intel.feeds.detect import detect, importer
from cloudsoc.intel.feeds.misp_feed import MANIFEST, MispFeed
from cloudsoc.intel.feeds.stix import Stix
from cloudsoc.intel.feeds.taxii import Taxii
from cloudsoc.intel.store import IndicatorStore

log = logging.getLogger(__name__)

Outcome = Literal["updated", "unchanged", "failed"]
# Record-level errors of one import kept in the status: enough to see what is wrong with a feed.
_KEPT_ERRORS: Final = 20
# Server replies quoted in an error this far.
_REPLY_CHARS: Final = 200
_USER_AGENT: Final = "cloudsoc-feed-sync"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS feed_state (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    added_after TEXT,
    manifest BLOB,
    outcome TEXT,
    last_attempt TEXT,
    last_success TEXT,
    last_error TEXT,
    counts BLOB
);
CREATE TABLE IF NOT EXISTS feed_config (name TEXT PRIMARY KEY, settings BLOB NOT NULL, added TEXT NOT NULL);
"""
_COLUMNS: Final = (
    "name, type, url, etag, last_modified, added_after, manifest, outcome, last_attempt, last_success, "
    "last_error, counts"
)


class FeedStatus(msgspec.Struct, kw_only=True):
    """What the last sync of one feed did.

    ``outcome``: ``updated`` (indicators imported), ``unchanged`` (304, same manifest, no new TAXII objects) or
    ``failed`` (``last_error`` says why; the previous state is kept). ``by_type``, ``written``, ``skipped`` and
    ``errors`` (record-level problems, the first few) describe the last import that brought something.
    """

    name: str
    type: str
    url: str
    outcome: Outcome | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    by_type: dict[str, int] = msgspec.field(default_factory=dict)
    written: int = 0
    skipped: int = 0
    errors: list[str] = msgspec.field(default_factory=list)


class _State(msgspec.Struct, kw_only=True):
    etag: str | None = None
    last_modified: str | None = None
    added_after: str | None = None
    manifest: dict[str, int] = msgspec.field(default_factory=dict)


class FeedError(CloudsocError):
    """One feed could not be synced; the message is safe to show (no secrets)."""


def redact_url(url: str | httpx.URL) -> str:
    """A URL without credentials and with query values masked (feed URLs carry API keys in their query)."""
    parsed = httpx.URL(str(url))
    shown = parsed.copy_with(username=None, password=None, query=None, fragment=None)
    text = str(shown)
    if parsed.query:
        keys = [k for k, _ in parsed.params.multi_items()]
        text += "?" + "&".join(f"{k}=***" for k in keys) if keys else "?***"
    return text


def _redact_httpx_record(record: logging.LogRecord) -> bool:
    # httpx logs every request with its full URL at INFO; feed URLs carry API keys in their query.
    if isinstance(record.args, tuple):
        record.args = tuple(redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args)
    return True


if _redact_httpx_record not in logging.getLogger("httpx").filters:
    logging.getLogger("httpx").addFilter(_redact_httpx_record)


def _secrets(config: BaseModel) -> list[str]:
    found: set[str] = set()
    for name in type(config).model_fields:
        value = getattr(config, name)
        values = value.values() if isinstance(value, Mapping) else [value]
        for item in values:
            if isinstance(item, SecretStr):
                text = item.get_secret_value()
                found.add(text)
                url = httpx.URL(text) if text.startswith(("http://", "https://")) else None
                if url is not None:
                    found.update(v for _, v in url.params.multi_items())
                    found.update(x for x in (url.username, url.password, url.query.decode()) if x)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _ts(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


class FeedSync:
    """Syncs configured feeds into ``store``; feed state and status are kept in the store's SQLite file."""

    def __init__(
        self,
        store: IndicatorStore,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self._transport = transport
        self._clock = clock or (lambda: datetime.now(UTC))
        with store.transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    # -- feeds added from the command line (or the console), beside those of the config file -------------------

    def add(self, name: str, settings: Mapping[str, Any], *, configured: Mapping[str, FeedConfig]) -> FeedConfig:
        """Keep a feed's settings in the store (``${NAME}`` stays as written, to be read from the environment at
        each sync, so a key can stay out of the file); returns them validated. A name the config file already
        uses is refused: the file would silently win."""
        if name in configured:
            raise FeedError(f"feed {name} is in the config file: change it there")
        config = self._validate(name, settings)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO feed_config (name, settings, added) VALUES (?, ?, ?)",
                (name, orjson.dumps(dict(settings)), _ts(self._clock())),
            )
        return config

    def remove(self, name: str) -> bool:
        """Forget an added feed and its state; its indicators stay (revoke them by source if wanted)."""
        with self.store.transaction() as conn:
            gone = conn.execute("DELETE FROM feed_config WHERE name = ?", (name,)).rowcount > 0
        if gone:
            self.forget(name)
        return gone

    def added(self) -> dict[str, FeedConfig]:
        """The added feeds, validated with the environment of now; one whose variable is missing is left out
        and its status says why (it never stops the others)."""
        found: dict[str, FeedConfig] = {}
        for name, raw in self.store.conn.execute("SELECT name, settings FROM feed_config ORDER BY name"):
            try:
                found[name] = self._validate(name, orjson.loads(raw))
            except CloudsocError as exc:
                settings = orjson.loads(raw)
                url = redact_url(str(settings.get("url", "")))
                status = FeedStatus(name=name, type=str(settings.get("type", "?")), url=url, outcome="failed")
                status.last_attempt, status.last_error = self._clock(), str(exc)
                self._save(status, None)
        return found

    def feeds(self, configured: Mapping[str, FeedConfig]) -> dict[str, FeedConfig]:
        """Every feed to sync: the config file's and the added ones."""
        return {**self.added(), **configured}

    @staticmethod
    def _validate(name: str, settings: Mapping[str, Any]) -> FeedConfig:
        from pydantic import TypeAdapter, ValidationError

        from cloudsoc.config.loader import expand_env

        def expand(value: Any, where: str) -> Any:
            if isinstance(value, str):
                return expand_env(value, where)
            if isinstance(value, dict):
                return {k: expand(v, f"{where}.{k}") for k, v in value.items()}
            return value

        expanded = expand(dict(settings), f"feeds.{name}")
        try:
            config: FeedConfig = TypeAdapter(FeedConfig).validate_python(expanded)
        except ValidationError as exc:
            first = exc.errors(include_input=False, include_url=False)[0]
            where = ".".join(map(str, first["loc"]))
            raise FeedError(f"feeds.{name}: {where}: {first['msg']}") from None
        return config

    # -- status -----------------------------------------------------------------------------------------------

    def status(self, name: str) -> FeedStatus | None:
        """The recorded status of one feed; None if it was never synced."""
        row = self.store.conn.execute(f"SELECT {_COLUMNS} FROM feed_state WHERE name = ?", (name,)).fetchone()
        return None if row is None else self._status(row)

    def statuses(self) -> dict[str, FeedStatus]:
        """Every recorded feed's status, by name."""
        rows = self.store.conn.execute(f"SELECT {_COLUMNS} FROM feed_state ORDER BY name").fetchall()
        return {row[0]: self._status(row) for row in rows}

    def forget(self, name: str) -> bool:
        """Drop a feed's state (validators, cursors, status): its next sync fetches everything again."""
        with self.store.transaction() as conn:
            return conn.execute("DELETE FROM feed_state WHERE name = ?", (name,)).rowcount > 0

    def due(self, configs: Mapping[str, FeedConfig], *, now: datetime | None = None) -> list[str]:
        """Names of the feeds whose interval has passed since their last attempt (or never tried)."""
        now = now or self._clock()
        found = []
        for name, config in configs.items():
            known = self.status(name)
            last = None if known is None else known.last_attempt
            if last is None or now - last >= timedelta(seconds=config.interval_secs):
                found.append(name)
        return found

    # -- syncing ----------------------------------------------------------------------------------------------

    def sync_all(self, configs: Mapping[str, FeedConfig]) -> dict[str, FeedStatus]:
        """Sync every feed in turn; one failing feed never stops the others."""
        return {name: self.sync(name, config) for name, config in configs.items()}

    def sync_due(self, configs: Mapping[str, FeedConfig]) -> dict[str, FeedStatus]:
        """Sync only the feeds that are due (see :meth:`due`)."""
        return self.sync_all({name: configs[name] for name in self.due(configs)})

    def sync(self, name: str, config: FeedConfig) -> FeedStatus:
        """Fetch one feed, import what changed and record the outcome. Never raises for a feed's own failure."""
        url = redact_url(config.url.get_secret_value())
        previous = self.status(name)
        state = self._state(name, config.type, url)
        status = FeedStatus(
            name=name,
            type=config.type,
            url=url,
            last_attempt=self._clock(),
            last_success=previous.last_success if previous else None,
        )
        if previous is not None and previous.type == config.type and previous.url == url:
            status.by_type, status.written = previous.by_type, previous.written
            status.skipped, status.errors = previous.skipped, previous.errors
        secrets = _secrets(config)
        source = config.source or name
        try:
            if isinstance(config, HttpFeedConfig):
                result, new_state = self._http(config, state, source)
            elif isinstance(config, MispFeedConfig):
                result, new_state = self._misp_feed(config, state, source)
            else:
                result, new_state = self._taxii(config, state, source)
            if result is not None and not result.count and result.errors:
                raise FeedError(f"nothing imported: {len(result.errors)} errors, first: {result.errors[0]}")
        except Exception as exc:  # every failure of one feed is recorded, never raised
            status.outcome = "failed"
            status.last_error = self._scrub(self._explain(exc), secrets)
            log.warning("feed %s (%s) failed: %s", name, url, status.last_error)
            self._save(status, None)
            return status
        if result is None:
            status.outcome = "unchanged"
        else:
            status.outcome = "updated"
            result.close()
            if result.indicators:  # held whole (MISP feed events, TAXII objects), not streamed
                self.store.upsert(result.indicators)
            status.written = result.count
            status.by_type = result.by_type()
            status.skipped = result.skipped
            status.errors = [self._scrub(e, secrets) for e in result.errors[:_KEPT_ERRORS]]
        status.last_success = status.last_attempt
        self._save(status, new_state)
        log.info("feed %s (%s): %s, %d indicators written", name, url, status.outcome, status.written)
        return status

    # -- the three kinds of feed ------------------------------------------------------------------------------

    def _client(self, config: HttpFeedConfig | MispFeedConfig) -> httpx.Client:
        headers = {"User-Agent": _USER_AGENT}
        headers.update({k: v.get_secret_value() for k, v in config.headers.items()})
        return httpx.Client(
            headers=headers,
            timeout=config.timeout_secs,
            verify=config.verify_tls,
            follow_redirects=True,
            transport=self._transport,
        )

    def _get(
        self, client: httpx.Client, url: httpx.URL, state: _State | None
    ) -> tuple[httpx.Response | None, _State | None]:
        """GET with the stored validators; (None, None) for a 304. Raises FeedError for 4xx/5xx."""
        headers = {}
        if state is not None:
            if state.etag:
                headers["If-None-Match"] = state.etag
            if state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
        response = client.get(url, headers=headers)
        if response.status_code == 304:
            return None, None
        if response.is_error:
            reply = response.text[:_REPLY_CHARS].strip()
            raise FeedError(
                f"HTTP {response.status_code} {response.reason_phrase} from {redact_url(url)}"
                + (f": {reply}" if reply else "")
            )
        return response, _State(etag=response.headers.get("ETag"), last_modified=response.headers.get("Last-Modified"))

    def _http(self, config: HttpFeedConfig, state: _State, source: str) -> tuple[ImportResult | None, _State]:
        url = httpx.URL(config.url.get_secret_value())
        with self._client(config) as client:
            response, validators = self._get(client, url, state)
        if response is None or validators is None:
            return None, state
        data = response.content
        file_name = PurePosixPath(url.path).name or url.host
        fmt = detect(data, file_name) if config.format == "auto" else config.format
        if fmt == "misp_feed":
            raise FeedError(f"{file_name}: a MISP feed manifest; configure the feed folder with type misp_feed")
        # Streamed into the store: a list of millions of lines is never held whole in the daemon.
        result = importer(fmt, config.list_options()).parse(
            data, name=file_name, source=source, result=ImportResult(self.store)
        )
        validators.added_after, validators.manifest = state.added_after, state.manifest
        return result, validators

    def _misp_feed(self, config: MispFeedConfig, state: _State, source: str) -> tuple[ImportResult | None, _State]:
        root = httpx.URL(config.url.get_secret_value())
        if not root.path.endswith("/"):
            root = root.copy_with(path=root.path + "/")
        feed = MispFeed()
        with self._client(config) as client:
            response, validators = self._get(client, root.join(MANIFEST).copy_merge_params(root.params), state)
            if response is None or validators is None:
                return None, state
            manifest = feed.manifest(response.content)
            changed = feed.changed(manifest, state.manifest)
            files = {MANIFEST: response.content}
            failed: list[str] = []
            for uuid in changed:
                event_url = root.join(f"{uuid}.json").copy_merge_params(root.params)
                try:
                    event, _ = self._get(client, event_url, None)
                except (httpx.HTTPError, FeedError) as exc:
                    failed.append(f"{uuid}.json: {self._explain(exc)}")
                    continue
                assert event is not None
                files[f"{uuid}.json"] = event.content
        if not changed:
            validators.manifest = state.manifest
            return None, validators
        result, new_manifest = feed.sync(files, source=source, previous=state.manifest)
        result.errors.extend(failed)
        if failed:
            # Keep the old validators so that the next sync re-reads the manifest and retries the missing events.
            validators.etag, validators.last_modified = state.etag, state.last_modified
        validators.manifest = new_manifest
        return result, validators

    def _taxii(self, config: TaxiiFeedConfig, state: _State, source: str) -> tuple[ImportResult | None, _State]:
        reader = Taxii(
            config.url.get_secret_value(),
            collection=config.collection,
            user=config.user,
            password=None if config.password is None else config.password.get_secret_value(),
            verify_tls=config.verify_tls,
            timeout_secs=config.timeout_secs,
            per_request=config.per_request,
        )
        try:
            batch = reader.read(state.added_after)
        finally:
            reader.close()
        new_state = _State(added_after=batch.added_last)
        if not batch.objects:
            return None, new_state
        bundle = {"type": "bundle", "id": f"bundle--{uuid4()}", "objects": batch.objects}
        result = Stix().parse(orjson.dumps(bundle), name=config.collection, source=source)
        return result, new_state

    # -- state ------------------------------------------------------------------------------------------------

    def _state(self, name: str, kind: str, url: str) -> _State:
        row = self.store.conn.execute(
            "SELECT type, url, etag, last_modified, added_after, manifest FROM feed_state WHERE name = ?", (name,)
        ).fetchone()
        if row is None or row[0] != kind or row[1] != url:
            # A new feed, or one whose type or location changed: its old validators and cursors mean nothing.
            return _State()
        manifest: dict[str, int] = orjson.loads(row[5]) if row[5] else {}
        return _State(etag=row[2], last_modified=row[3], added_after=row[4], manifest=manifest)

    def _save(self, status: FeedStatus, state: _State | None) -> None:
        counts = orjson.dumps(
            {"by_type": status.by_type, "written": status.written, "skipped": status.skipped, "errors": status.errors}
        )
        with self.store.transaction() as conn:
            if state is None:
                # A failure: the previous validators and cursors stay (unless the feed itself changed).
                conn.execute(
                    "INSERT INTO feed_state (name, type, url, outcome, last_attempt, last_success, last_error, counts) "
                    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE SET "
                    "etag = CASE WHEN type = excluded.type AND url = excluded.url THEN etag END, "
                    "last_modified = CASE WHEN type = excluded.type AND url = excluded.url THEN last_modified END, "
                    "added_after = CASE WHEN type = excluded.type AND url = excluded.url THEN added_after END, "
                    "manifest = CASE WHEN type = excluded.type AND url = excluded.url THEN manifest END, "
                    "type = excluded.type, url = excluded.url, outcome = excluded.outcome, "
                    "last_attempt = excluded.last_attempt, last_success = excluded.last_success, "
                    "last_error = excluded.last_error, counts = excluded.counts",
                    (
                        status.name,
                        status.type,
                        status.url,
                        status.outcome,
                        _ts(status.last_attempt),
                        _ts(status.last_success),
                        status.last_error,
                        counts,
                    ),
                )
                return
            conn.execute(
                f"INSERT OR REPLACE INTO feed_state ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    status.name,
                    status.type,
                    status.url,
                    state.etag,
                    state.last_modified,
                    state.added_after,
                    orjson.dumps(state.manifest) if state.manifest else None,
                    status.outcome,
                    _ts(status.last_attempt),
                    _ts(status.last_success),
                    None,
                    counts,
                ),
            )

    @staticmethod
    def _status(row: tuple[Any, ...]) -> FeedStatus:
        counts: dict[str, Any] = orjson.loads(row[11]) if row[11] else {}
        return FeedStatus(
            name=row[0],
            type=row[1],
            url=row[2],
            outcome=row[7],
            last_attempt=_dt(row[8]),
            last_success=_dt(row[9]),
            last_error=row[10],
            by_type=counts.get("by_type", {}),
            written=counts.get("written", 0),
            skipped=counts.get("skipped", 0),
            errors=counts.get("errors", []),
        )

    # -- messages ---------------------------------------------------------------------------------------------

    @staticmethod
    def _explain(exc: BaseException) -> str:
        if isinstance(exc, FeedError | ParseError):
            return str(exc)
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out ({type(exc).__name__})"
        if isinstance(exc, httpx.HTTPError):
            return f"cannot fetch: {type(exc).__name__}: {exc}"
        response = getattr(exc, "response", None)
        code = getattr(response, "status_code", None)
        if code is not None:
            return f"HTTP {code} {getattr(response, 'reason', '')} ({type(exc).__name__})"
        return f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _scrub(message: str, secrets: list[str]) -> str:
        for secret in secrets:
            message = message.replace(secret, "***")
        return message

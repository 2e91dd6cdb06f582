"""TAXII 2.1 collections, read with taxii2-client: the objects added after a cursor, page by page.

Not an importer (it does I/O): it hands back STIX objects, which the STIX importer turns into indicators. The
cursor is the server's ``X-TAXII-Date-Added-Last`` header (the ``date_added`` of the newest object returned),
which taxii2-client does not expose, so a response hook on its requests session records it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from urllib.parse import urljoin

import msgspec
import requests
from requests.adapters import HTTPAdapter
from taxii2client.common import _HTTPConnection
from taxii2client.v21 import ApiRoot, Collection, as_pages

from cloudsoc.errors import ParseError

_DATE_ADDED_LAST: Final = "X-TAXII-Date-Added-Last"


class TaxiiBatch(msgspec.Struct, kw_only=True):
    """Objects of one read and the cursor to pass as ``added_after`` next time (unchanged when nothing came)."""

    objects: list[dict[str, Any]]
    added_last: str | None
    pages: int


class _TimeoutAdapter(HTTPAdapter):
    """taxii2-client passes no timeout to requests; this gives every request one."""

    def __init__(self, timeout_secs: float) -> None:
        super().__init__()
        self.timeout_secs = timeout_secs

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_secs
        return super().send(request, **kwargs)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Taxii:
    """One TAXII 2.1 collection: ``url`` is the discovery endpoint or an API root; ``collection`` an id or title."""

    def __init__(
        self,
        url: str,
        *,
        collection: str,
        user: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        timeout_secs: float = 30.0,
        per_request: int = 1000,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.collection_ref = collection
        self.per_request = per_request
        self._conn = _HTTPConnection(user, password, verify_tls, version="2.1")
        adapter = _TimeoutAdapter(timeout_secs)
        session: requests.Session = self._conn.session
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.hooks["response"].append(self._seen)
        self._added_last: str | None = None

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        last = response.headers.get(_DATE_ADDED_LAST)
        if last and (self._added_last is None or _when(last) > _when(self._added_last)):
            self._added_last = last

    def collection(self) -> Collection:
        """The configured collection, found through discovery (every API root) or in the given API root."""
        doc = self._conn.get(self.url)
        if isinstance(doc, dict) and "api_roots" in doc:
            roots = [urljoin(self.url, root) for root in doc.get("api_roots") or ()]
        else:
            roots = [self.url]
        titles = []
        for root_url in roots:
            for col in ApiRoot(root_url, conn=self._conn).collections:
                if self.collection_ref in (col.id, col.title):
                    return col
                titles.append(f"{col.title} ({col.id})")
        raise ParseError(
            f"no collection {self.collection_ref!r} on the TAXII server; it has: {', '.join(titles) or 'none'}"
        )

    def read(self, added_after: str | None = None) -> TaxiiBatch:
        """Objects added after ``added_after`` (a TAXII timestamp; None: all), every page of them."""
        col = self.collection()
        self._added_last = None
        objects: list[dict[str, Any]] = []
        pages = 0
        kwargs = {"added_after": added_after} if added_after else {}
        for envelope in as_pages(col.get_objects, per_request=self.per_request, **kwargs):
            pages += 1
            objects.extend(o for o in envelope.get("objects") or () if isinstance(o, dict))
        added_last = self._added_last if objects else None
        if objects and added_last is None:
            added_last = self._manifest_last(col, added_after)
        if added_after and added_last and _when(added_last) <= _when(added_after):
            added_last = added_after
        return TaxiiBatch(objects=objects, added_last=added_last or added_after, pages=pages)

    def _manifest_last(self, col: Collection, added_after: str | None) -> str | None:
        """The newest ``date_added`` in the collection's manifest: the cursor when a server sends no header."""
        kwargs = {"added_after": added_after} if added_after else {}
        last: str | None = None
        for envelope in as_pages(col.get_manifest, per_request=self.per_request, **kwargs):
            for entry in envelope.get("objects") or ():
                added = entry.get("date_added") if isinstance(entry, dict) else None
                if added and (last is None or _when(added) > _when(last)):
                    last = added
        return last

    def close(self) -> None:
        self._conn.close()

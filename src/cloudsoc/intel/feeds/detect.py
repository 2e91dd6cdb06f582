"""Which importer reads a file: decided from its bytes and name, only where that is unambiguous.

JSON is told apart by shape (STIX bundle/objects, MISP event/response, a MISP feed manifest). Text feeds are told
apart by their banner or header (IPsum, Feodo, Maltrail's copyright line, a CSV header naming indicator columns);
anything else whose lines all look like indicators is a plain list. Otherwise the caller must say ``--format``.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Final

import msgspec
import orjson

from cloudsoc.errors import ParseError
from cloudsoc.intel.feeds.base import Importer, text_lines
from cloudsoc.intel.feeds.csv_map import NAMED_COLUMNS, ColumnMap
from cloudsoc.intel.feeds.misp_feed import HASHES, MANIFEST
from cloudsoc.intel.feeds.plain import COMMENT_PREFIXES
from cloudsoc.intel.indicator import guess

FORMATS: Final = ("stix", "misp", "misp_feed", "csv_map", "plain", "ipsum", "maltrail", "feodo")
_SAMPLE_LINES: Final = 200


class ListOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What to say about the values of a list that says nothing about them (plain lists and CSV files): how
    much to trust them, what they are, and for CSV which columns hold what."""

    confidence: int = 50
    intel_types: tuple[str, ...] = ()
    columns: ColumnMap | None = None


# The importers that take ListOptions; the others read confidence and types from the feed itself.
_LISTS: Final = ("plain", "csv_map")


def importer(fmt: str, options: ListOptions | None = None) -> Importer:
    """The importer for a format name (a plugin of the ``intel_feeds`` group), set up with ``options``."""
    from cloudsoc.plugins import Registry

    cls = Registry("intel_feeds").load(fmt)
    if options is None or fmt not in _LISTS:
        made: Importer = cls()
        return made
    kwargs: dict[str, object] = {"confidence": options.confidence, "intel_types": options.intel_types}
    if fmt == "csv_map":
        kwargs["columns"] = options.columns
    made = cls(**kwargs)
    return made


def parse_columns(text: str) -> ColumnMap:
    """A column mapping written as YAML or JSON (``{values: {dst_ip: ip}, first_seen: first_seen_utc}``)."""
    import yaml

    try:
        return msgspec.convert(yaml.safe_load(text) or {}, ColumnMap)
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ParseError(
            f"column mapping: {exc}; write e.g. {{values: {{dst_ip: ip, url: url}}, first_seen: date, "
            "confidence: score, tags: tags, description: comment, delimiter: ','}"
        ) from None


def detect(data: bytes, name: str) -> str:
    """The format of ``data`` (a file called ``name``): one of :data:`FORMATS`; ParseError when unclear."""
    base = PurePosixPath(name.replace("\\", "/")).name.lower()
    if base in (MANIFEST, HASHES):
        return "misp_feed"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return _json(data, name)
    lines = text_lines(data[:65536], name)
    banner = "\n".join(line for line in lines[:20] if line.startswith("#")).lower()
    body = [line.strip() for line in lines if line.strip() and not line.startswith(COMMENT_PREFIXES)]
    if "ipsum" in banner:
        return "ipsum"
    if "feodo" in banner or (body and body[0].replace('"', "").startswith("first_seen_utc,dst_ip")):
        return "feodo"
    if "maltrail" in banner:
        return "maltrail"
    if body and "," in body[0]:
        header = [h.strip().strip('"').lower() for h in body[0].split(",")]
        if any(h in NAMED_COLUMNS for h in header):
            return "csv_map"
    sample = body[:_SAMPLE_LINES]
    if sample and all(guess(line.split(" #")[0]) is not None for line in sample):
        return "plain"
    raise ParseError(f"{name}: cannot tell the feed format; give it (one of {', '.join(FORMATS)})")


def _json(data: bytes, name: str) -> str:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"{name}: looks like JSON but is not: {exc}") from None
    first = doc[0] if isinstance(doc, list) and doc else doc
    if isinstance(first, dict):
        if first.get("type") == "bundle" or (str(first.get("id", "")).count("--") == 1 and "type" in first):
            return "stix"
        if {"Event", "response", "Attribute"} & first.keys():
            return "misp"
        if {"matching_attributes", "list"} <= first.keys():
            raise ParseError(
                f"{name}: a MISP warninglist (known-benign values), not a threat feed; warninglists are loaded by "
                "the warninglists module, not imported as indicators"
            )
    raise ParseError(f"{name}: JSON, but neither STIX 2.1 nor MISP; give the format")

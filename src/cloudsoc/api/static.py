"""``/static/…``: the console's own CSS/JS and, under ``/static/vendor/``, the npm-installed libraries.

Only files below the static folder are served, and only the named vendor files (not the whole node_modules):
a path with ``..``, ``.``, a backslash, a NUL or an absolute path is refused before touching the disk, and the
resolved file must still lie below its root (symlinks included).
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

log = logging.getLogger("cloudsoc.console")

WEB: Final = Path(__file__).resolve().parent.parent / "web"
STATIC: Final = WEB / "static"
NODE_MODULES: Final = WEB / "node_modules"
# /static/vendor/<name> → the file inside node_modules (package.json pins the versions).
VENDOR: Final = {
    "echarts.min.js": "echarts/dist/echarts.min.js",
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
}
_TYPES: Final = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


class StaticAssets:
    """Resolves ``/static`` paths to files, safely."""

    def __init__(self, root: Path = STATIC, node_modules: Path = NODE_MODULES) -> None:
        self.root = root.resolve()
        self.node_modules = node_modules.resolve()

    def missing_vendor(self) -> list[str]:
        return [name for name, rel in VENDOR.items() if not (self.node_modules / rel).is_file()]

    def resolve(self, path: str) -> Path | None:
        """The file for a request path below /static/, or None (never a file outside the roots)."""
        if not path or "\\" in path or "\x00" in path or path.startswith("/"):
            return None
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            return None
        if parts[0] == "vendor":
            rel = VENDOR.get("/".join(parts[1:]))
            if rel is None:
                return None
            root, candidate = self.node_modules, self.node_modules / rel
        else:
            root, candidate = self.root, self.root.joinpath(*parts)
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not resolved.is_relative_to(root) or not resolved.is_file():
            return None
        return resolved

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/static/{path:path}", name="static")
        def static(path: str) -> FileResponse:
            found = self.resolve(path)
            if found is None:
                raise HTTPException(404)
            media = _TYPES.get(found.suffix) or mimetypes.guess_type(found.name)[0] or "application/octet-stream"
            return FileResponse(found, media_type=media)

        return router

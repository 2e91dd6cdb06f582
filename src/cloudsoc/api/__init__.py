"""The console: FastAPI app factory (:mod:`cloudsoc.api.app`), accounts, auth, routers. See docs/specs/console.md."""

"""HTTP API routers under ``/api/v1``; each declares the permission it needs with ``require(Permission.X)``."""

"""Event storage: the Storage protocol and its backends (DuckDB embedded by default)."""

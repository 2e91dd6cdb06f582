"""Configuration: a YAML loader that keeps line numbers, and the pydantic models it validates into."""

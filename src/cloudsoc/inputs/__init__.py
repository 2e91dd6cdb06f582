"""Inputs: where records come from (files, watched directories and bucket mounts, later streams and APIs)."""

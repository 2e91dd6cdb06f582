"""Enrichers: add context to ECS documents between parsing and detection (intel, later geo/asn, identity, asset)."""

"""Threat intelligence: the indicator model, the indicator store and the feed importers (``feeds/``)."""

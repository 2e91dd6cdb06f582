"""cloudsoc: a small security-operations centre for companies whose servers live on public cloud."""

__version__ = "0.1.0"

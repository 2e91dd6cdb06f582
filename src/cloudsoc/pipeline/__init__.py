"""The pipeline: inputs -> parsers -> (enrichers, detectors) -> storage, in batches."""

"""Service layer: ingestion, search, deletion, stats and audit. Raises `ServiceError`s only."""

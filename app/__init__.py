"""ACIR retrieval service: settings, storage, services, HTTP API and the server factory."""

"""Database models, engine/session helpers and migration entry points."""

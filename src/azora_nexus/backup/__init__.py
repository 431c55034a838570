"""Backups of the embedded data (PostgreSQL with its WAL, the Mongo documents) and restores."""

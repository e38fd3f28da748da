"""API keys: generation and hashing (model), stores (memory, SQLite, PostgreSQL), the caching
resolver the server authenticates with, cross-replica invalidation, and the `headway keys` CLI."""

"""The spend ledger: usage records, stores (memory, SQLite, PostgreSQL), the batching writer with
retry and spill, the `call.settled` listener, and the `headway usage` CLI."""

"""The source side: what a publication carries, read from ``pg_catalog`` in one round trip."""

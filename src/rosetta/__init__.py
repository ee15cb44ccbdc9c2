"""Rosetta: the schema registry of PostgreSQL logical-replication publications."""

__version__ = "0.1.0"

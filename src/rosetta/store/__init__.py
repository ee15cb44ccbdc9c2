"""Rosetta's own database: migrations, named queries and the functions that run them."""

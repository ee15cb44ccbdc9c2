"""Local PostgreSQL servers started from the machine's binaries."""

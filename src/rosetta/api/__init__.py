"""The REST API (``/api/v1``) and the app factory the web UI is served from."""

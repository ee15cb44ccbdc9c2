"""The web UI: server-rendered pages (FastAPI + Jinja2) over the same registry as the API.

``rosetta.web.pages.router`` holds every page; the app factory includes it and serves
``rosetta/web/static`` under ``/static``.
"""

"""Composition root: settings, wiring, the ASGI factory and the CLI."""

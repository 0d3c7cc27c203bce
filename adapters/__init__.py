"""Adapters to the outside: storage specifics, models, Redis."""

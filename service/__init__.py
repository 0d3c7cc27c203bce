"""Use cases: the commands and queries the API and CLI call."""

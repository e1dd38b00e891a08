"""nazar-agent: collects host metrics and ships them to the Nazar ingest API."""

__version__ = "0.1.0"

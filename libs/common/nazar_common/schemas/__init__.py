"""Pydantic models shared between components: wire messages and stored configuration."""

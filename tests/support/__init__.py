"""Helpers shared by the test suites (private server instances, ...)."""

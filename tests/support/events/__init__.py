"""Helpers for tests of any service: event builders, waiting with a deadline."""

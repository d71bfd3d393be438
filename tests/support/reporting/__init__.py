"""Builders for tests and benchmarks of the reporting service."""

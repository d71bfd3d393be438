"""The city as data."""

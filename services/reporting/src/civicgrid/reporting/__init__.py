"""civicgrid reporting service."""

"""civicgrid intake service."""

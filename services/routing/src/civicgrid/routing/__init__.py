"""civicgrid routing service."""

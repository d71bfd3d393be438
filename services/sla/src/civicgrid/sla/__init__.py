"""civicgrid sla service."""

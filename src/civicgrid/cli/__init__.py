"""The civicgrid command."""

"""The civicgrid event contract."""

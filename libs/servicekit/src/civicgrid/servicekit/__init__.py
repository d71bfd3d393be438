"""What every civicgrid service shares."""

"""`make bench`: civicgrid's figures, each beside a raw-NATS baseline taken in the same run."""

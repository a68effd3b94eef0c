"""Training: the loop, checkpoints, early stopping."""

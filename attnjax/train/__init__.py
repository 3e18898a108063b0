"""Training: the optimizer and train state, the pure steps, checkpoints and the loop."""

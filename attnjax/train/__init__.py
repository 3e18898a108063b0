"""Training: the optimizer and train state, the pure steps, the loop, and checkpoint averaging."""

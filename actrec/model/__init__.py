"""The model: temporal heads, the linear probe, the training loop, the head choice and the checkpoint format."""

"""Data, the frozen backbone with its one prompt-injection path, the trainer and metrics."""

"""Checkpoints, run directories and progress reporting."""

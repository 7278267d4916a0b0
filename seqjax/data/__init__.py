"""Loaders for packaged datasets and synthetic tasks (numpy batches)."""

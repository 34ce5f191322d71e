"""The training loop (optimisers, sigma schedule, best-validation checkpoint, resume) and data parallelism."""

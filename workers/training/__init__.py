"""The training loop, pure torch and no database: the loop, its run state, its hooks and
results, and the pieces it is made of (devices, steps, optimisers, augmentation, ranks)."""

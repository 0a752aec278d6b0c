"""The training process: claims queued jobs and trains them."""

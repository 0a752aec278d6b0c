"""trainserve: train PyTorch image classifiers over REST and serve them."""

"""Serving trained models: which model answers, the model cache, the batcher, the service the
prediction routes call."""

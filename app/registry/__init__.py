"""The model registry: named models, their versions (trained jobs' models) and aliases."""

"""A registered version taken elsewhere: safetensors, TorchScript, ONNX and a model card."""

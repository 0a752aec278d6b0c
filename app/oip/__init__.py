"""The Open Inference Protocol (KServe v2) over HTTP/REST, with the binary tensor data
extension: the request and response bodies, their tensors, and registered models behind them."""

"""An inference response: its JSON, and the binary parts after it when outputs ask for them."""

import json
from typing import Any

from app.oip.inference import Inferred
from app.oip.tensors import to_binary, to_json

HEADER_LENGTH = "Inference-Header-Content-Length"


def encode(
    model_name: str, request_id: str | None, inferred: Inferred
) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (content type, and the JSON part's length when
    binary parts follow)."""
    served = inferred.served
    body: dict[str, Any] = {"model_name": model_name, "model_version": str(served.version)}
    if request_id is not None:
        body["id"] = request_id
    body["parameters"] = {"job_id": served.job_id}
    parts: list[bytes] = []
    outputs = []
    for output in inferred.outputs:
        described: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": output.shape,
        }
        if output.binary:
            part = to_binary(output.data)
            parts.append(part)
            described["parameters"] = {"binary_data_size": len(part)}
        else:
            described["data"] = to_json(output.data)
        outputs.append(described)
    body["outputs"] = outputs
    header = json.dumps(body, separators=(",", ":")).encode()
    if not parts:
        return header, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + b"".join(parts), headers

"""The baseline: a plain FastAPI endpoint that runs one forward pass per request, no batching.

Usage: python benchmarks/naive_server.py MODEL_FILE PORT
"""

import io
import sys
from pathlib import Path

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, UploadFile
from PIL import Image

from app.ml.checkpoints import load_model
from app.ml.images import normalize

saved = load_model(Path(sys.argv[1]))
app = FastAPI()


@app.post("/predict")
def predict(file: UploadFile) -> dict[str, object]:
    image = Image.open(io.BytesIO(file.file.read())).convert("RGB")
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    with torch.inference_mode():
        probabilities = torch.softmax(saved.model(normalize(pixels.unsqueeze(0))), dim=1)[0]
    best = int(probabilities.argmax())
    return {
        "label": saved.classes[best],
        "class_index": best,
        "probabilities": dict(zip(saved.classes, probabilities.tolist(), strict=True)),
    }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")

"""The baseline: a plain FastAPI endpoint that runs one forward pass per request, no batching.

Usage: python benchmarks/naive_server.py MODEL_FILE PORT
"""

import sys

import uvicorn
from fastapi import FastAPI, UploadFile
from peer_model import classify, load, pixels

saved = load(sys.argv[1])
app = FastAPI()


@app.post("/predict")
def predict(file: UploadFile) -> dict[str, object]:
    return classify(saved, pixels(file.file.read()).unsqueeze(0))[0]


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")

"""What HTTP alone costs: plain uvicorn + FastAPI answering a constant, no torch. `multipart`
parses the upload as /predict does (the field `file`); `raw` reads the image as the body.

Usage: python benchmarks/ceiling_server.py multipart|raw PORT
"""

import sys

import uvicorn
from fastapi import FastAPI, Request, UploadFile

ANSWER = {"label": "cat", "class_index": 3, "probabilities": {"cat": 1.0}}
app = FastAPI()

if sys.argv[1] == "multipart":

    @app.post("/predict")
    async def predict(file: UploadFile) -> dict[str, object]:
        await file.read()
        return ANSWER

else:

    @app.post("/predict")
    async def predict_raw(request: Request) -> dict[str, object]:
        await request.body()
        return ANSWER


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")

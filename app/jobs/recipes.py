"""Named training recipes: sets of hyperparameters a job starts from; its own fields still win."""

from typing import Any, Literal

RecipeName = Literal["tutorial", "fast"]

# The tutorial recipe is the job fields' own defaults, so it overrides nothing.
RECIPES: dict[str, dict[str, Any]] = {
    "tutorial": {},
    # The same CNN trained for speed: larger batches, a one-cycle learning rate, flips and
    # 2-pixel crops on the device, label smoothing. About 64% test accuracy in 6 epochs; see
    # benchmarks/train_bench.py for its time on a 2-core CPU.
    "fast": {
        "epochs": 6,
        "batch_size": 256,
        "optimizer": "sgd",
        "learning_rate": 0.1,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 5e-4,
        "lr_schedule": "onecycle",
        "label_smoothing": 0.1,
        "random_flip": True,
        "random_crop_padding": 2,
        "log_every": 49,
    },
}

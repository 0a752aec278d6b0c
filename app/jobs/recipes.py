"""Named training recipes: sets of hyperparameters a job starts from; its own fields still win."""

from typing import Any, Literal

RecipeName = Literal["tutorial", "fast", "fast94"]

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
    # fast_cnn with the recipe of the airbench paper's 94% network (arXiv 2404.00498), its
    # per-example rates turned into those of a mean loss: learning rate 11.5 / (1 + 1 / (1 -
    # 0.85)) = 1.5 for batches of 1,024, decay per step 0.0153 * 1024 / 7851 = 0.002, which
    # SGD's coupled weight decay gives as 0.002 / 1.5; with the paper's lookahead, which it
    # tuned them with. Left out: its multi-crop test-time augmentation and the freezing of the
    # whitening bias (see docs/api.md).
    "fast94": {
        "model": "fast_cnn",
        "epochs": 10,
        "batch_size": 1024,
        "optimizer": "sgd",
        "learning_rate": 1.5,
        "momentum": 0.85,
        "nesterov": True,
        "weight_decay": 0.00133,
        "lr_schedule": "warmup_linear",
        "label_smoothing": 0.2,
        "random_flip": True,
        "alternating_flip": True,
        "random_crop_padding": 2,
        "lookahead": True,
    },
}

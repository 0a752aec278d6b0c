"""A job's figures as PNG, as the tutorial draws them: training loss against epochs, and the
confusion matrix. Drawn with matplotlib's object API (no pyplot state), so renders in several
threads do not share a figure."""

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIZE_INCHES = (8.0, 4.5)
DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def loss_png(
    title: str,
    points: Sequence[tuple[int, int, float]],
    steps_per_epoch: int | None,
    epochs: Sequence[tuple[int, float]],
    points_label: str = "training loss (mean over each log_every mini-batches)",
) -> bytes:
    """Loss points (epoch, step, loss) at their fractional epoch, and each finished epoch's
    (epoch, test loss)."""
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
    axes = figure.subplots()
    per_epoch = steps_per_epoch or 1
    axes.plot(
        [epoch - 1 + step / per_epoch for epoch, step, _ in points],
        [loss for *_, loss in points],
        label=points_label,
    )
    if epochs:
        axes.plot(
            [epoch for epoch, _ in epochs],
            [test for _, test in epochs],
            "o--",
            label="test loss (end of epoch)",
        )
    axes.set(title=title, xlabel="epoch", ylabel="loss")
    axes.grid(alpha=0.3)
    axes.legend()
    return _png(figure)


def confusion_png(title: str, matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """The confusion matrix as a heatmap with its counts: rows true, columns predicted."""
    figure = Figure(figsize=(6.5, 6.0), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, shrink=0.8)
    ticks = range(len(classes))
    axes.set_xticks(ticks, classes, rotation=45, ha="right")
    axes.set_yticks(ticks, classes)
    axes.set(title=title, xlabel="predicted", ylabel="true")
    largest = max((max(row) for row in matrix), default=0)
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            dark = count > largest / 2
            axes.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    return _png(figure)

"""What a trained job leaves behind: its model file and its test predictions, written beside
each other before the job may succeed, and the results its row records."""

from app.jobs.config import JobConfig
from app.jobs.files import model_file, predictions_file
from app.jobs.transitions import FinalResults, Lease
from app.ml.checkpoints import save_model
from app.ml.example_predictions import ExamplePredictions, save_example_predictions
from app.settings import Settings
from workers.dataset_cache import LoadedDataset
from workers.training.hooks import TrainResult


def save_results(
    settings: Settings,
    lease: Lease,
    config: JobConfig,
    dataset: LoadedDataset,
    result: TrainResult,
) -> FinalResults:
    """Write the model and the test predictions of this attempt; what finish_job records."""
    relative_path = model_file(lease.job_id, lease.attempt)
    sha256 = save_model(
        settings.artifacts_dir / relative_path,
        result.model,
        arch=config.model,
        classes=dataset.classes,
        image_size=dataset.image_size,
        standardizer=dataset.standardizer,
        hidden_layers=config.hidden_layers,
    )
    # Beside the model and before the job succeeds: a succeeded job always has them.
    save_example_predictions(
        settings.artifacts_dir / predictions_file(lease.job_id, lease.attempt),
        ExamplePredictions(
            index=dataset.test_positions(),
            true=dataset.test.labels,
            predicted=result.final.predicted.cpu(),
            confidence=result.final.confidence.cpu(),
        ),
    )
    return FinalResults(
        test_accuracy=result.final.accuracy,
        per_class_accuracy=result.final.per_class_accuracy,
        confusion_matrix=result.final.confusion_matrix,
        model_path=relative_path.as_posix(),
        model_sha256=sha256,
        dataset_sha256=dataset.content_sha256,
        test_images=len(dataset.test),
        best_epoch=result.best_epoch,
    )

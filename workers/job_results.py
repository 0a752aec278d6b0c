"""What a trained job leaves behind: its model file and its test predictions, published to the
artifact store beside each other before the job may succeed, and the results its row records."""

from typing import Any

from app.jobs.config import JobConfig
from app.jobs.files import model_key, predictions_key
from app.jobs.transitions import FinalResults, Lease
from app.ml.checkpoints import model_payload, write_torch_file
from app.ml.example_predictions import ExamplePredictions, predictions_payload
from app.storage.store import ArtifactStore, Published
from workers.dataset_cache import LoadedDataset
from workers.training.hooks import TrainResult


def save_results(
    store: ArtifactStore,
    lease: Lease,
    config: JobConfig,
    dataset: LoadedDataset,
    result: TrainResult,
) -> FinalResults:
    """Publish the model and the test predictions of this attempt; what finish_job records."""
    model = _publish(
        store,
        model_key(lease.job_id, lease.attempt),
        model_payload(
            result.model,
            arch=config.model,
            classes=dataset.classes,
            image_size=dataset.image_size,
            standardizer=dataset.standardizer,
            hidden_layers=config.hidden_layers,
        ),
    )
    # Beside the model and before the job succeeds: a succeeded job always has them.
    predictions = _publish(
        store,
        predictions_key(lease.job_id, lease.attempt),
        predictions_payload(
            ExamplePredictions(
                index=dataset.test_positions(),
                true=dataset.test.labels,
                predicted=result.final.predicted.cpu(),
                confidence=result.final.confidence.cpu(),
            )
        ),
    )
    return FinalResults(
        test_accuracy=result.final.accuracy,
        per_class_accuracy=result.final.per_class_accuracy,
        confusion_matrix=result.final.confusion_matrix,
        model_path=model.key,
        model_sha256=model.sha256,
        predictions_sha256=predictions.sha256,
        dataset_sha256=dataset.content_sha256,
        test_images=len(dataset.test),
        best_epoch=result.best_epoch,
    )


def _publish(store: ArtifactStore, key: str, payload: dict[str, Any]) -> Published:
    """Store a torch file under `key`, whole, before any row names it."""
    return store.publish_new(key, lambda path: write_torch_file(payload, path))

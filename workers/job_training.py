"""One claimed job from its config to its results: the data loaded, the checkpoint or the parent
it starts from, the training loop, and the model and predictions published and recorded."""

import logging
import threading

from app.datasets.tensors import DecodedTensors
from app.db import in_write_session, session_scope
from app.jobs.config import JobConfig
from app.jobs.transitions import Lease, finish_job
from app.models import Job
from app.settings import Settings
from app.storage.store import ArtifactStore
from workers.dataset_cache import DatasetCache, hold_out, limit_samples
from workers.job_checkpoints import JobCheckpoints
from workers.job_results import save_results
from workers.job_run import JobRun, TrainedImages
from workers.parents import load_parent
from workers.training.data_parallel import train_data_parallel
from workers.training.hooks import TrainInputs
from workers.training.loop import train

log = logging.getLogger("trainserve.worker")


def train_and_save(
    lease: Lease,
    settings: Settings,
    store: ArtifactStore,
    datasets: DatasetCache,
    stop: threading.Event,
    trained: TrainedImages,
) -> None:
    """Train the leased job to its end and record it succeeded; what stops it raises."""
    with session_scope() as session:
        job = session.get(Job, lease.job_id)
        assert job is not None
        config = JobConfig.from_stored(job.config)
        uploaded = (
            None if config.dataset == "cifar10" else DecodedTensors.find(session, config.dataset)
        )
    with JobRun(lease, settings, stop, trained, store) as run:
        dataset = limit_samples(
            run.in_store(lambda: datasets.load(config.dataset, uploaded)),
            config.max_train_samples,
            config.max_test_samples,
        )
        training, validation = hold_out(dataset.train, config)
        resume = run.load_checkpoint()
        # Read once, before the first checkpoint: a resumed job has its weights there.
        initial = None
        parent = config.init_from
        if parent is not None and resume is None:
            initial = run.in_store(lambda: load_parent(store, parent))
        inputs = TrainInputs(
            config,
            training,
            dataset.test,
            dataset.classes,
            validation_set=validation,
            resume=resume,
            initial_weights=initial,
        )
        run.batch_size, run.train_images = inputs.batch_size, len(training)
        # A validation split is refused for several processes: `training` is all of it.
        run_loop = train if config.processes == 1 else train_data_parallel
        result = run_loop(inputs, run)
        run.confirm_lease()
        final = run.in_store(lambda: save_results(store, lease, config, dataset, result))
        run.write(lambda: in_write_session(finish_job, lease, final))
    JobCheckpoints(store, lease).clear()
    log.info("job %s succeeded: test accuracy %.2f%%", lease.job_id, 100 * result.final.accuracy)

"""What a training run is given: the job's config and data, and the batch size it implies."""

import torch

from app.jobs.config import JobCreate
from app.ml.images import ImageSet
from workers.training.hooks import TrainInputs


def test_a_job_without_a_batch_size_trains_on_the_whole_training_set() -> None:
    images = torch.zeros(12, 4, dtype=torch.uint8)
    data = ImageSet(images=images, labels=torch.zeros(12, dtype=torch.long))
    full_batch = JobCreate(batch_size=None, seed=0).resolved()
    assert TrainInputs(full_batch, data, data, ["a"]).batch_size == 12
    assert full_batch.batch_size is None  # derived, not written back
    five = JobCreate(batch_size=5, seed=0).resolved()
    assert TrainInputs(five, data, data, ["a"]).batch_size == 5

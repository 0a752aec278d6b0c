"""The promote policies' decisions and the reasons they give, on versions as they are stored."""

import pytest

from app.models import ModelVersion
from app.registry.promotion import PromotePolicy, decide

SHA = "a" * 64


def version(
    number: int, accuracy: float, images: int | None = 2000, sha: str | None = SHA
) -> ModelVersion:
    lineage = {
        "dataset": {"id": "cifar10", "kind": "cifar10", "sha256": sha},
        "test_images": images,
    }
    return ModelVersion(version=number, test_accuracy=accuracy, lineage=lineage)


@pytest.mark.parametrize(
    ("policy", "candidate", "production", "expected"),
    [
        ("if_better", version(1, 0.389), None, (True, "promoted: no version was in production")),
        (
            "if_better",
            version(2, 0.14),
            version(1, 0.389),
            (
                False,
                "not promoted: 14.0% is below production v1's 38.9% on the same 2,000 test images",
            ),
        ),
        (
            "if_better",
            version(2, 0.41),
            version(1, 0.389),
            (True, "promoted: 41.0% is above production v1's 38.9% on the same 2,000 test images"),
        ),
        (
            "if_better",
            version(2, 0.389),
            version(1, 0.389),
            (
                False,
                "not promoted: 38.9% equals production v1's 38.9% on the same 2,000 test images",
            ),
        ),
        (
            "always",
            version(2, 0.1),
            version(1, 0.9),
            (True, 'promoted: the job\'s promote is "always"'),
        ),
        ("never", version(2, 0.9), None, (False, 'not promoted: the job\'s promote is "never"')),
    ],
)
def test_decisions(
    policy: PromotePolicy,
    candidate: ModelVersion,
    production: ModelVersion | None,
    expected: tuple[bool, str],
) -> None:
    assert decide(policy, candidate, production) == expected


@pytest.mark.parametrize(
    "other",
    [
        version(1, 0.389, images=10_000),  # more test images
        version(1, 0.389, sha="b" * 64),  # other dataset files
        version(1, 0.389, sha=None),  # trained before test sets were recorded
    ],
)
def test_a_better_version_on_another_test_set_is_never_promoted(other: ModelVersion) -> None:
    promoted, reason = decide("if_better", version(2, 0.9), other)
    assert not promoted
    assert reason == (
        "not promoted: its test set differs from production v1's, so 90.0% and 38.9% cannot be "
        "compared; promote it by hand if it is better"
    )

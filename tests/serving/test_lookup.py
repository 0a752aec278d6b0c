"""Which job answers a default prediction when lookups overlap."""

from app.serving.lookup import ServedJob, ServingJobs

OLD = ServedJob(1, "jobs/1/model.pt", None)
NEW = ServedJob(2, "jobs/2/model.pt", None)


def test_a_lookup_begun_earlier_neither_replaces_nor_answers_over_a_later_one() -> None:
    serving = ServingJobs(default_ttl_s=60)
    # The lookup that began at 20.0 saw the new model and finished first; the one begun at
    # 10.0, before the new model was committed, saw the old one and finishes afterwards.
    assert serving.remember_default(20.0, NEW) == NEW
    assert serving.remember_default(10.0, OLD) == NEW
    assert serving._default == (20.0, NEW)


def test_a_later_lookup_takes_over() -> None:
    serving = ServingJobs(default_ttl_s=60)
    assert serving.remember_default(10.0, OLD) == OLD
    assert serving.remember_default(20.0, NEW) == NEW
    assert serving._default == (20.0, NEW)

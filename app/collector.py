"""Keeping Python's garbage collector off the request path's tail.

A full (generation 2) collection walks every object the collector tracks. Importing torch,
torchvision, FastAPI, SQLAlchemy and pydantic leaves a few hundred thousand of them, none of
which ever becomes garbage. Under load the youngest generation fills many times a second, so
full collections come every second or so, and each took 140-170 ms on the 2-core machine: every
request in flight waited that long at once, which was the p99. Moved to the permanent generation
by gc.freeze(), those objects are no longer walked: a full collection then takes a few
milliseconds.

The freeze is taken once, when a server process has started (`trainserve api` and `up`), before
any model, batcher or request exists: a frozen object is never collected, so a cycle frozen with
it (a batcher and its task, a request in flight) would live as long as the process. Models loaded
later are not frozen: even a ResNet-50 is only about 2,500 Python objects (its tensors' memory is
not walked), against the ~330,000 that the imports leave, and an evicted model must be freed.
Objects are still freed by reference counting as before.
"""

import gc
import logging

log = logging.getLogger("trainserve.api")


def freeze_long_lived() -> None:
    """Collect what is garbage now, then exempt everything left from future collections. Call
    once, when a server process has started: never per request, nor after a model load."""
    gc.collect()
    gc.freeze()
    log.debug("garbage collector: %d objects frozen", gc.get_freeze_count())


def unfreeze() -> None:
    """Give what freeze_long_lived() exempted back to the collector (when the app stops, so
    that an app that is not the process's last can be freed)."""
    gc.unfreeze()

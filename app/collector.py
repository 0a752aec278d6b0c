"""Keeping Python's garbage collector off the request path's tail.

A full (generation 2) collection walks every object the collector tracks. Importing torch,
torchvision, FastAPI, SQLAlchemy and pydantic leaves a few hundred thousand of them, and a loaded
model adds its own; none of them ever becomes garbage. Under load the youngest generation fills
many times a second, so full collections come every second or so, and each took 140-170 ms on
the 2-core machine: every request in flight waited that long at once, which was the p99. Moved
to the permanent generation by gc.freeze(), those objects are no longer walked: a full collection
then takes a few milliseconds. Objects are still freed by reference counting as before; only
cycles among frozen objects would never be collected, and the objects frozen are the ones that
live as long as the process (the modules, the settings, the application, a loaded model).
"""

import gc
import logging

log = logging.getLogger("trainserve.api")


def freeze_long_lived() -> None:
    """Collect what is garbage now, then exempt everything left from future collections. Call
    once start-up is done, and again after a model is loaded: never per request."""
    gc.collect()
    gc.freeze()
    log.debug("garbage collector: %d objects frozen", gc.get_freeze_count())

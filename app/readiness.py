"""Whether the API is ready to serve: its database's schema is current and it takes a write, and
its artifact store answers. Both probes ask this, `/readyz` and the Open Inference Protocol's
`/v2/health/ready`."""

from app.db_outages import database_outage
from app.errors import API_OUTAGES
from app.migrations import schema_is_current
from app.storage.config import get_store_health

SCHEMA_PROBLEM = "database unreachable or schema not current"


def readiness_problem() -> str | None:
    """Why the API is not ready, or None when it is."""
    if not schema_is_current():
        return SCHEMA_PROBLEM
    outage = database_outage()
    if outage is not None:
        API_OUTAGES.failed(outage, RuntimeError("the readiness probe's write failed"))
        return str(outage)
    API_OUTAGES.succeeded()
    return get_store_health().problem()

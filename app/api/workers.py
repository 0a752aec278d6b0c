"""The live workers: what each offers and what it is training."""

from fastapi import APIRouter

from app.api.deps import SessionDep, SettingsDep
from app.jobs.schemas import WorkerList, WorkerOut
from app.jobs.worker_registry import live_workers

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", response_model=WorkerList, summary="List live workers")
def list_workers(session: SessionDep, settings: SettingsDep) -> WorkerList:
    """Workers whose heartbeat is younger than a lease (TRAINSERVE_LEASE_SECONDS), oldest
    first, with their CPUs, GPUs and current job."""
    workers = live_workers(session, settings.lease_seconds)
    return WorkerList(items=[WorkerOut.model_validate(w) for w in workers], total=len(workers))

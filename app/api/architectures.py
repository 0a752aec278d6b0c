"""The architectures a job may name as its model."""

from fastapi import APIRouter

from app.jobs.architectures import ArchitectureList, architecture_list

router = APIRouter(prefix="/architectures", tags=["jobs"])


@router.get("", response_model=ArchitectureList, summary="List the architectures a job may use")
def list_architectures() -> ArchitectureList:
    """Our tutorial CNN and MLP, and torchvision's image classifiers (never with pretrained
    weights), each with the inputs it takes, its parameter count and whether it uses batch norm.
    The first call builds every network on the meta device to count its parameters (a few
    seconds); later ones answer from memory."""
    return architecture_list()

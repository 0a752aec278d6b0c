"""The other servers the serving benchmark runs, and the virtual environments of the two
frameworks, made on first use under ~/.cache/trainserve-bench (TRAINSERVE_BENCH_CACHE).

Each framework gets its own environment with its pinned version and whatever it needs; torch
(and the model code) come from the benchmark's own interpreter through a .pth file placed after
the environment's own packages, so every server runs the same torch build on the same model.
"""

import os
import site
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = {"litserve": "litserve==0.2.19", "bentoml": "bentoml==1.4.40"}
# Same versions as the benchmark's interpreter: torch, loaded from there, is built against them.
SHARED_PINS = ("numpy", "pillow", "python-multipart")


def cache_dir() -> Path:
    return Path(os.environ.get("TRAINSERVE_BENCH_CACHE", Path.home() / ".cache/trainserve-bench"))


def framework_python(name: str) -> Path:
    """The interpreter of the framework's environment, made first if it is not there yet."""
    from importlib.metadata import version

    pins = [f"{package}=={version(package)}" for package in SHARED_PINS]
    venv = cache_dir() / f"{name}-{FRAMEWORKS[name].split('==')[1]}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if not marker.exists():
        print(f"making {venv} (once)", file=sys.stderr)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", FRAMEWORKS[name], *pins], check=True
        )
        packages = subprocess.run(
            [str(python), "-c", "import site; print(site.getsitepackages()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (Path(packages) / "zz_benchmark_torch.pth").write_text(site.getsitepackages()[0] + "\n")
        marker.touch()
    return python


@dataclass(frozen=True)
class Server:
    """How to start one server: its command, from which folder, and the path that says it is up."""

    command: list[str]
    port: int
    ready_path: str
    env: dict[str, str] | None = None


def naive(model: Path, port: int) -> Server:
    return Server([sys.executable, "naive_server.py", str(model), str(port)], port, "/docs")


def ceiling(kind: str, port: int) -> Server:
    return Server([sys.executable, "ceiling_server.py", kind, str(port)], port, "/docs")


def litserve(model: Path, port: int) -> Server:
    python = framework_python("litserve")
    return Server([str(python), "litserve_server.py", str(model), str(port)], port, "/health")


def bentoml(model: Path, port: int) -> Server:
    python = framework_python("bentoml")
    command = [str(python), "-m", "bentoml", "serve", "bentoml_service:Classifier"]
    env = {"MODEL_FILE": str(model), "BENTOML_DO_NOT_TRACK": "True"}
    return Server([*command, "--port", str(port), "--host", "127.0.0.1"], port, "/readyz", env)


def trainserve(processes: int, port: int, env: dict[str, str]) -> Server:
    command = [str(Path(sys.executable).parent / "trainserve"), "api", "--port", str(port)]
    return Server([*command, "--workers", str(processes)], port, "/readyz", env)


def start(server: Server, log: Path) -> "subprocess.Popen[bytes]":
    """Start the server from benchmarks/ (where the servers' modules are), its output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            server.command,
            cwd=HERE,
            env={**os.environ, **(server.env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

"""The worker's side of decoding a dataset in a child process (workers/decoder.py): start it,
wait for its answer, and say how it died when it gives none."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass

from app.datasets.state import DatasetLease, IngestResult
from workers.decoder import DecodeRequest

log = logging.getLogger("trainserve.worker")

KIB_PER_MIB = 1024
# How often a worker waiting for its decoder looks whether it has been asked to stop.
WAIT_POLL_S = 0.2


@dataclass(frozen=True)
class DecoderReply:
    """What the decoding process answered, how it died (`died`: "was killed by SIGKILL..."),
    why the artifact store could not be used (`store_failed`) or refused it (`store_refused`),
    or that the worker's stop ended it."""

    result: IngestResult | None = None
    error: str | None = None
    died: str | None = None
    store_failed: str | None = None
    store_refused: str | None = None
    stopped: bool = False


def run_decoder(request: DecodeRequest, lease: DatasetLease, stop: threading.Event) -> DecoderReply:
    """Decode the leased dataset in a child process; its answer, how it died, or that `stop`
    ended it."""
    dataset_id = lease.dataset_id
    # Its own session: a Ctrl-C at the terminal reaches the worker alone, which ends the decoder.
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.decoder"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    log.info(
        "dataset %s: decoding %s in process %d (attempt %d of %d)",
        dataset_id,
        request.upload_key or "its upload (under TRAINSERVE_DATA_DIR)",
        process.pid,
        lease.attempt,
        lease.max_attempts,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(asdict(request)).encode())
        process.stdin.close()
    except BrokenPipeError:
        pass  # it died at once: its status says how
    answer = bytearray()
    reader = threading.Thread(target=lambda: answer.extend(stdout.read()), daemon=True)
    stdout = process.stdout
    reader.start()
    # wait4, not wait: the child's peak memory comes with its status.
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if stop.wait(WAIT_POLL_S):
            process.kill()  # the worker is stopping: the next one decodes it from the start
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            reader.join()
            return DecoderReply(stopped=True)
    process.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    stdout.close()
    peak = f"peak memory {usage.ru_maxrss // KIB_PER_MIB} MiB"
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        return DecoderReply(died=f"was killed by {name} ({peak})")
    if process.returncode != 0:
        return DecoderReply(died=f"exited with code {process.returncode} ({peak})")
    try:
        reply = json.loads(bytes(answer).decode(errors="replace").strip().splitlines()[-1])
        if "result" in reply:
            return DecoderReply(result=IngestResult(**reply["result"]))
        if "store_failed" in reply:
            return DecoderReply(store_failed=str(reply["store_failed"]))
        if "store_refused" in reply:
            return DecoderReply(store_refused=str(reply["store_refused"]))
        return DecoderReply(error=str(reply["error"]))
    except (IndexError, ValueError, TypeError, KeyError):
        return DecoderReply(died=f"ended without an answer ({peak})")

"""A second opinion on the latency figures: Debian's `wrk`, sending the same requests as
benchmarks/loadgen.py (each connection taking the requests file's requests in turn)."""

import re
import shutil
import subprocess
from pathlib import Path

# wrk's Lua: read the length-prefixed requests once per thread, hand them out in turn.
SCRIPT = """
local requests, next_index = {}, 1
function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local offset = 1
  while offset <= #data do
    local length = 0
    for i = 0, 7 do length = length * 256 + data:byte(offset + i) end
    requests[#requests + 1] = data:sub(offset + 8, offset + 7 + length)
    offset = offset + 8 + length
  end
end
function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
"""
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def p99_ms(port: int, requests_file: Path, connections: int, seconds: float) -> float | None:
    """wrk's p99 latency over `seconds` with `connections` connections; None if it failed."""
    script = requests_file.with_suffix(".lua")
    script.write_text(SCRIPT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    url = f"http://127.0.0.1:{port}/"
    output = subprocess.run(
        [*command, url, "--", str(requests_file)], capture_output=True, text=True
    ).stdout
    found = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if found is None or "Non-2xx" in output:
        return None
    return round(float(found.group(1)) * UNITS_MS[found.group(2)], 1)

"""NVML readings: what each GPU of this node holds, and which process holds it.

Used by the job manager's per-node probe task and by replicas reporting their own GPU.
Without NVML (no driver, no GPU) every function returns an empty answer, never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from scheduling import GpuInfo

log = logging.getLogger("meshforge.gpus")

MIB = 1024 * 1024


def nvml_readings() -> list[dict[str, Any]]:
    """One row per GPU: index, name, uuid, total/free/used bytes, utilisation and the
    compute processes with the bytes each holds. Empty where NVML is unavailable."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    rows: list[dict[str, Any]] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            try:
                util = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except pynvml.NVMLError:
                util = None
            try:
                temperature = int(pynvml.nvmlDeviceGetTemperature(handle, 0))
            except pynvml.NVMLError:
                temperature = None
            processes = []
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                used = proc.usedGpuMemory
                processes.append({"pid": int(proc.pid), "used_bytes": int(used or 0)})
            rows.append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "uuid": uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    "total_bytes": int(mem.total),
                    "free_bytes": int(mem.free),
                    "used_bytes": int(mem.used),
                    "utilization": util,
                    "temperature": temperature,
                    "processes": processes,
                }
            )
    except Exception as exc:  # a driver hiccup: report what was read so far
        log.warning("NVML reading failed: %r", exc)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return rows


def from_nvml_row(node_id: str, row: dict[str, Any], our_pids: Collection[int]) -> GpuInfo:
    """The scheduler's reading of one GPU: memory used by processes that are not our
    replicas counts as foreign and shrinks the GPU's budget."""
    ours = sum(p["used_bytes"] for p in row.get("processes", []) if p["pid"] in our_pids)
    return GpuInfo.from_nvml(node_id, row["index"], row["total_bytes"], row["free_bytes"], ours)

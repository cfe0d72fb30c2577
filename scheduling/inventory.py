"""GPU inventory: what each GPU holds in total and what is free right now.

Readings come from NVML on nodes with real GPUs (the Ray layer calls pynvml and hands the
numbers to `GpuInfo.from_nvml`), or from a configured simulated inventory such as
``"2x24576"`` on machines without one. This module only turns numbers into values; it
does no I/O, so the scheduler can be tested and simulated without a GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from scheduling.ids import GpuRef, NodeId
from scheduling.resources import Vram

DEFAULT_NODE: NodeId = "local"


class InventoryError(ValueError):
    """A simulated-inventory string or a reading that makes no sense."""


@dataclass(frozen=True)
class GpuInfo:
    """One reading of one GPU, in integer MiB.

    `used_by_others_mib` is memory held by processes the scheduler does not control (other
    users, a desktop session, a leaked context); it shrinks the GPU's budget. `free_mib` is
    what NVML reports free; it gates loads as well as the declarations do.
    """

    node_id: NodeId
    index: int
    total_mib: int
    free_mib: int
    used_by_others_mib: int = 0

    def __post_init__(self) -> None:
        if self.total_mib <= 0 or self.index < 0:
            raise InventoryError(f"bad GPU reading {self!r}")
        if not 0 <= self.free_mib <= self.total_mib:
            raise InventoryError(f"free memory out of range in {self!r}")
        if not 0 <= self.used_by_others_mib <= self.total_mib:
            raise InventoryError(f"foreign memory out of range in {self!r}")

    @property
    def ref(self) -> GpuRef:
        return GpuRef(self.node_id, self.index)

    @property
    def total(self) -> Vram:
        return Vram(self.total_mib)

    @property
    def free(self) -> Vram:
        return Vram(self.free_mib)

    @property
    def used_by_others(self) -> Vram:
        return Vram(self.used_by_others_mib)

    @classmethod
    def idle(cls, node_id: NodeId, index: int, total_mib: int) -> GpuInfo:
        """A GPU nobody uses yet: everything free (simulated GPUs start this way)."""
        return cls(node_id, index, total_mib, total_mib, 0)

    @classmethod
    def from_nvml(
        cls, node_id: NodeId, index: int, total_bytes: int, free_bytes: int, ours_bytes: int
    ) -> GpuInfo:
        """Build a reading from `nvmlDeviceGetMemoryInfo` totals plus the bytes our own
        replicas hold (summed from `nvmlDeviceGetComputeRunningProcesses` by pid). Whatever
        is used and not ours belongs to someone else."""
        total, free = Vram.from_bytes(total_bytes), Vram.from_bytes(free_bytes)
        others = Vram(max(0, total_bytes - free_bytes - ours_bytes) // (1024 * 1024))
        return cls(node_id, index, total.mib, min(free.mib, total.mib), min(others, total).mib)

    def with_usage(self, free_mib: int, used_by_others_mib: int) -> GpuInfo:
        """The same GPU with a newer reading."""
        return replace(self, free_mib=free_mib, used_by_others_mib=used_by_others_mib)


class GpuInventory:
    """The GPUs of the cluster, keyed by `GpuRef`, in a stable order."""

    def __init__(self, gpus: Iterable[GpuInfo] = ()) -> None:
        self._gpus: dict[GpuRef, GpuInfo] = {}
        for gpu in gpus:
            if gpu.ref in self._gpus:
                raise InventoryError(f"GPU {gpu.ref} listed twice")
            self._gpus[gpu.ref] = gpu

    def __iter__(self) -> Iterator[GpuInfo]:
        return iter(sorted(self._gpus.values(), key=lambda g: g.ref))

    def __len__(self) -> int:
        return len(self._gpus)

    def __contains__(self, ref: object) -> bool:
        return ref in self._gpus

    def get(self, ref: GpuRef) -> GpuInfo:
        return self._gpus[ref]

    def update(self, info: GpuInfo) -> None:
        """Add a GPU or replace its reading."""
        self._gpus[info.ref] = info

    def largest(self) -> Vram:
        """Total memory of the biggest GPU (what a model could ever get, before margins)."""
        return max((g.total for g in self._gpus.values()), default=Vram(0))


_GROUP = re.compile(
    r"^(?:(?P<node>[A-Za-z0-9_.-]+):)?(?:(?P<count>\d+)x)?(?P<size>\d+)(?P<unit>[GM](?:i?B)?)?$"
)


def _size_mib(size: str, unit: str | None) -> int:
    value = int(size)
    return value * 1024 if unit and unit.upper().startswith("G") else value


def parse_simulated_inventory(text: str, default_node: NodeId = DEFAULT_NODE) -> GpuInventory:
    """Parse a simulated inventory such as ``"2x24576"``, ``"4x24G"``, ``"24576,16384"``
    or ``"node-a:2x24576,node-b:1x49152"``. Sizes are MiB unless suffixed G/GiB. GPUs on
    the same node are numbered in the order given. Every GPU starts idle."""
    gpus: list[GpuInfo] = []
    next_index: dict[NodeId, int] = {}
    for raw in text.replace("+", ",").split(","):
        part = raw.strip()
        if not part:
            continue
        match = _GROUP.match(part)
        if match is None:
            raise InventoryError(f"cannot read GPU group {part!r} (expected e.g. 2x24576)")
        node = match["node"] or default_node
        count = int(match["count"] or 1)
        total = _size_mib(match["size"], match["unit"])
        if count <= 0 or total <= 0:
            raise InventoryError(f"GPU group {part!r} has no memory or no GPUs")
        for _ in range(count):
            index = next_index.get(node, 0)
            next_index[node] = index + 1
            gpus.append(GpuInfo.idle(node, index, total))
    if not gpus:
        raise InventoryError(f"no GPUs in simulated inventory {text!r}")
    return GpuInventory(gpus)


def inventory_from_config(
    value: str | Iterable[Mapping[str, Any]], default_node: NodeId = DEFAULT_NODE
) -> GpuInventory:
    """A simulated inventory from configuration: either the string form of
    `parse_simulated_inventory`, or a list of ``{"node_id", "count", "total_mib"}`` entries
    (YAML settings)."""
    if isinstance(value, str):
        return parse_simulated_inventory(value, default_node)
    groups: list[str] = []
    for entry in value:
        node = str(entry.get("node_id", default_node))
        count, total = int(entry.get("count", 1)), int(entry["total_mib"])
        groups.append(f"{node}:{count}x{total}")
    return parse_simulated_inventory(",".join(groups), default_node)

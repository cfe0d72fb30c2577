"""Identifier types shared by the scheduling core.

Model, job and owner ids are plain strings on the wire (the API, the database), so they are
aliases here: they document intent in signatures without forcing callers to wrap every
string. A GPU is identified by two values, so it gets a real value type (`GpuRef`) and can
never be confused with a model id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

ModelId: TypeAlias = str
JobId: TypeAlias = str
OwnerId: TypeAlias = str
NodeId: TypeAlias = str


@dataclass(frozen=True, order=True)
class GpuRef:
    """One GPU in the cluster: the Ray node it sits on and its index on that node."""

    node_id: NodeId
    index: int

    def __str__(self) -> str:
        return f"{self.node_id}:{self.index}"

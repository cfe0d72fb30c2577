"""Memory as a value object: integer MiB with `can_fit`, `+` and `-`.

Every memory figure in the scheduler is a `Vram`, never a bare int or float, so MiB, MB
and bytes cannot be mixed by accident and all arithmetic is exact (no float rounding in
the ledger invariant).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

BYTES_PER_MIB: Final = 1024 * 1024


@dataclass(frozen=True, order=True, slots=True)
class Vram:
    """An amount of GPU memory in whole MiB. Negative values are allowed as the result of
    a subtraction (a deficit); `can_fit` and `clamp` are how callers interpret them."""

    mib: int

    def __post_init__(self) -> None:
        if isinstance(self.mib, bool) or not isinstance(self.mib, int):
            raise TypeError(f"Vram takes integer MiB, got {self.mib!r}")

    @classmethod
    def zero(cls) -> Vram:
        return cls(0)

    @classmethod
    def from_bytes(cls, n: int) -> Vram:
        """Round down: a partial MiB of free memory cannot hold a MiB of model."""
        return cls(int(n) // BYTES_PER_MIB)

    @classmethod
    def from_gib(cls, gib: int) -> Vram:
        return cls(gib * 1024)

    @classmethod
    def sum_of(cls, amounts: Iterable[Vram]) -> Vram:
        return cls(sum(a.mib for a in amounts))

    def can_fit(self, need: Vram) -> bool:
        """True if `need` fits in this amount of room."""
        return need.mib <= self.mib

    def clamp(self) -> Vram:
        """This amount, or zero if it is a deficit."""
        return self if self.mib >= 0 else Vram(0)

    def __add__(self, other: Vram) -> Vram:
        return Vram(self.mib + other.mib)

    def __sub__(self, other: Vram) -> Vram:
        return Vram(self.mib - other.mib)

    def __bool__(self) -> bool:
        return self.mib != 0

    def __str__(self) -> str:
        return f"{self.mib} MiB"

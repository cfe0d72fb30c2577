"""Vram arithmetic, GPU readings and the simulated-inventory parser."""

from __future__ import annotations

import pytest

from scheduling.ids import GpuRef
from scheduling.inventory import (
    GpuInfo,
    InventoryError,
    inventory_from_config,
    parse_simulated_inventory,
)
from scheduling.resources import Vram


def test_vram_arithmetic_and_can_fit() -> None:
    room = Vram(24576) - Vram(512)
    assert room == Vram(24064)
    assert room.can_fit(Vram(24064)) and not room.can_fit(Vram(24065))
    assert Vram(3) + Vram(4) == Vram(7)
    assert (Vram(1) - Vram(5)).clamp() == Vram(0)
    assert Vram.sum_of([Vram(1), Vram(2)]) == Vram(3)
    assert Vram.from_bytes(3 * 1024 * 1024 - 1) == Vram(2)
    assert Vram.from_gib(24) == Vram(24576)


@pytest.mark.parametrize("bad", [1.5, "12", True])
def test_vram_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        Vram(bad)  # type: ignore[arg-type]


def test_parse_counts_units_and_nodes() -> None:
    inv = parse_simulated_inventory("2x24576")
    assert [(g.ref, g.total_mib, g.free_mib) for g in inv] == [
        (GpuRef("local", 0), 24576, 24576),
        (GpuRef("local", 1), 24576, 24576),
    ]
    inv = parse_simulated_inventory("a:1x24G, b:2x16384, a:80GiB")
    assert [(str(g.ref), g.total_mib) for g in inv] == [
        ("a:0", 24576),
        ("a:1", 81920),
        ("b:0", 16384),
        ("b:1", 16384),
    ]
    assert inv.largest() == Vram(81920)


@pytest.mark.parametrize("text", ["", "2x", "x24576", "0x24576", "2x0", "two"])
def test_parse_rejects_nonsense(text: str) -> None:
    with pytest.raises(InventoryError):
        parse_simulated_inventory(text)


def test_inventory_from_config_list() -> None:
    inv = inventory_from_config([{"node_id": "n1", "count": 2, "total_mib": 8192}])
    assert [str(g.ref) for g in inv] == ["n1:0", "n1:1"]
    assert len(inventory_from_config("3x1024")) == 3


def test_gpu_info_from_nvml_attributes_foreign_memory() -> None:
    mib = 1024 * 1024
    info = GpuInfo.from_nvml("n", 0, 24576 * mib, 10000 * mib, ours_bytes=12000 * mib)
    assert info.total_mib == 24576 and info.free_mib == 10000
    assert info.used_by_others_mib == 24576 - 10000 - 12000
    with pytest.raises(InventoryError):
        GpuInfo("n", 0, 100, 200)

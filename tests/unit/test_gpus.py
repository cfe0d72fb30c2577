"""NVML rows to scheduler readings: memory held by processes that are not our replicas
shrinks a GPU's budget; without NVML nothing is reported (never an exception)."""

from __future__ import annotations

from meshforge.gpus import MIB, from_nvml_row, nvml_readings

ROW = {
    "index": 1,
    "total_bytes": 24576 * MIB,
    "free_bytes": 10000 * MIB,
    "processes": [
        {"pid": 10, "used_bytes": 12000 * MIB},  # our replica
        {"pid": 99, "used_bytes": 2000 * MIB},  # somebody else's
    ],
}


def test_foreign_memory_is_what_is_used_and_not_ours() -> None:
    info = from_nvml_row("node-a", ROW, {10})
    assert (info.node_id, info.index) == ("node-a", 1)
    assert info.total_mib == 24576 and info.free_mib == 10000
    assert info.used_by_others_mib == 24576 - 10000 - 12000


def test_with_no_replicas_of_ours_everything_used_is_foreign() -> None:
    assert from_nvml_row("node-a", ROW, set()).used_by_others_mib == 24576 - 10000


def test_no_nvml_means_no_readings() -> None:
    rows = nvml_readings()
    assert isinstance(rows, list)
    for row in rows:  # on a GPU host: every row is complete
        assert row["total_bytes"] >= row["free_bytes"] >= 0

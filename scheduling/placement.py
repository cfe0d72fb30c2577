"""Where a replica should go: pure functions over the ledger.

The choice, in order of preference (each tier is tried before the next):

0. a GPU where the model fits now, without unloading anything;
1. a GPU where it fits once unloads already in progress finish (no new evictions);
2. a GPU where it fits after evicting idle models, least recently used first, none of
   them loaded in the last `min_resident_s` seconds (anti-thrashing);
3. the same, allowing recently loaded idle models to be evicted (only when the caller
   says it is necessary: the model has no replica at all).

Within a tier: the GPU running fewest jobs (replicas on one GPU share its compute), then
for evictions the victims used longest ago (global LRU) and the fewest of them, then the
tightest fit, which keeps large holes for large models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from scheduling.ids import GpuRef, ModelId
from scheduling.ledger import GpuLedger, Replica, ReplicaState
from scheduling.models import ModelProfile
from scheduling.resources import Vram


@dataclass(frozen=True)
class Placement:
    """A chosen GPU, the idle replicas to evict there first (LRU order), and whether the
    room only appears once unloads in progress finish."""

    gpu: GpuRef
    victims: tuple[Replica, ...] = ()
    wait_for_unloads: bool = False

    @property
    def immediate(self) -> bool:
        """True if the load can be reserved right now."""
        return not self.victims and not self.wait_for_unloads


@dataclass(frozen=True)
class PlacementRules:
    """What a placement may do. `evictable` says whether an idle replica's model may be
    evicted at all (the caller excludes models with queued jobs)."""

    evictable: Callable[[Replica], bool]
    now: float
    min_resident_s: float
    allow_evict: bool = True
    allow_recent: bool = False


def _victims(
    gpu: GpuLedger, need: Vram, room: Vram, rules: PlacementRules
) -> tuple[tuple[Replica, ...], bool] | None:
    """The LRU idle replicas whose eviction makes `need` fit in `room`, and whether any
    of them was loaded recently; None if evicting every allowed one is not enough."""
    candidates = sorted(
        (r for r in gpu.replicas() if r.idle and rules.evictable(r)), key=lambda r: r.last_used
    )
    chosen: list[Replica] = []
    recent = False
    for replica in candidates:
        if room.can_fit(need):
            break
        is_recent = (replica.loaded_at or replica.since) + rules.min_resident_s > rules.now
        if is_recent and not rules.allow_recent:
            continue
        chosen.append(replica)
        recent = recent or is_recent
        room = room + replica.vram
    return (tuple(chosen), recent) if room.can_fit(need) else None


def _option(
    gpu: GpuLedger, model_id: ModelId, need: Vram, claimed: Vram, rules: PlacementRules
) -> tuple[tuple[float, ...], Placement] | None:
    """The best way to place the model on this GPU, with its sort key (lower is better)."""
    if gpu.get(model_id) is not None or not gpu.can_ever_hold(need):
        return None
    room_now = gpu.load_room - claimed
    busy = float(gpu.in_flight)
    if room_now.can_fit(need):
        return (0, busy, 0, 0, (room_now - need).mib), Placement(gpu.ref)
    room_later = room_now + gpu.unloading
    if room_later.can_fit(need):
        return (1, busy, 0, 0, (room_later - need).mib), Placement(gpu.ref, (), True)
    if not rules.allow_evict:
        return None
    found = _victims(gpu, need, room_later, rules)
    if found is None:
        return None
    victims, recent = found
    newest = max(v.last_used for v in victims)
    freed = Vram.sum_of(v.vram for v in victims)
    key = (3 if recent else 2, busy, newest, len(victims), (room_later + freed - need).mib)
    return key, Placement(gpu.ref, victims, bool(gpu.unloading))


def choose_gpu(
    gpus: Iterable[GpuLedger],
    model_id: ModelId,
    need: Vram,
    claimed: Mapping[GpuRef, Vram],
    rules: PlacementRules,
) -> Placement | None:
    """The best placement for one new replica of `model_id`, or None if no GPU can take
    it under `rules` (every candidate victim is busy, queued for, or too recent).
    `claimed` is room on each GPU already promised to loads waiting for unloads."""
    best: tuple[tuple[float, ...], Placement] | None = None
    for gpu in gpus:
        option = _option(gpu, model_id, need, claimed.get(gpu.ref, Vram(0)), rules)
        if option is not None and (best is None or option[0] < best[0]):
            best = option
    return best[1] if best is not None else None


def wants_scale_out(
    replicas: list[Replica], profile: ModelProfile, queued: int, service_s: float, cap: int
) -> bool:
    """Whether a model that already has replicas should get one more: yes if its backlog
    (queued jobs not covered by replicas still loading), shared by its replicas, would
    take longer to drain than loading a new replica takes."""
    live = [r for r in replicas if r.state is not ReplicaState.UNLOADING]
    if not live or len(live) >= cap:
        return False
    loading = sum(1 for r in live if r.state is ReplicaState.LOADING)
    backlog = queued - loading * profile.max_concurrency
    slots = len(live) * profile.max_concurrency
    return backlog > 0 and backlog * service_s / slots > profile.load_time_s

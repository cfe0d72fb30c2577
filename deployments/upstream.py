"""Shared base of the adapters that run upstream research code on a GPU.

Upstream packages are never imported here at module level: `availability()` only looks them
up with `importlib.util.find_spec`, and the adapters import them inside `load()`/`run()`.
Weights come from local folders (an explicit `weights_dir`, else `weights_root/<subdir>`),
and the Hugging Face libraries are told to stay offline.
"""

from __future__ import annotations

import importlib.util
import os
import random
import secrets
import sys
import threading
import traceback
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deployments.base import (
    JobCancelled,
    Model,
    ModelInputError,
    ModelOutOfMemory,
    free_accelerator_memory,
)
from meshforge.errors import MeshForgeError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
_SEED_MODULUS = 2**32


def offline_env() -> None:
    """Keep Hugging Face libraries from reaching the network (unless already configured)."""
    for name in OFFLINE_VARIABLES:
        os.environ.setdefault(name, "1")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for torch.cuda.OutOfMemoryError (by class name, so torch need not be importable)
    and for the older RuntimeError form of a CUDA allocation failure."""
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "CUDA out of memory" in str(exc)


def _is_absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str | list | tuple | dict | set) and len(value) == 0:
        return True
    return False


def unsupported(
    params: Mapping[str, Any],
    reasons: Mapping[str, str],
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The fields of `reasons` a request actually set: present in `params`, not None/empty
    and not equal to their entry in `defaults` -> {field: reason}. Meant for
    generation_info["unsupported_parameters"]."""
    defaults = defaults or {}
    out: dict[str, str] = {}
    for name, reason in reasons.items():
        if name not in params:
            continue
        value = params[name]
        if _is_absent(value):
            continue
        if name in defaults and value == defaults[name]:
            continue
        out[name] = reason
    return out


def _vertices_of(obj: Any) -> np.ndarray:
    if isinstance(obj, np.ndarray):
        return obj.reshape(-1, 3)
    bounds = getattr(obj, "bounds", None)
    if bounds is not None:
        return np.asarray(bounds, dtype=np.float64).reshape(-1, 3)
    return np.asarray(obj, dtype=np.float64).reshape(-1, 3)


@dataclass(frozen=True)
class Frame:
    """Where a mesh sits: its bounding-box centre and half its largest extent.

    `normalise` maps the mesh into [-1, 1] (what upstream models expect) and `restore`
    maps upstream output back to the input's position and scale."""

    center: np.ndarray
    scale: float

    @classmethod
    def of(cls, mesh: Any) -> Frame:
        """The frame of a trimesh Trimesh/Scene or an (n, 3) vertex array."""
        points = _vertices_of(mesh)
        if len(points) == 0:
            return cls(center=np.zeros(3), scale=1.0)
        lo, hi = points.min(axis=0), points.max(axis=0)
        scale = float(np.max(hi - lo)) / 2.0
        if not np.isfinite(scale) or scale <= 1e-12:
            scale = 1.0
        return cls(center=(lo + hi) / 2.0, scale=scale)

    def matrix(self) -> np.ndarray:
        """4x4 transform from the normalised frame back to the input frame."""
        m = np.eye(4)
        m[:3, :3] *= self.scale
        m[:3, 3] = self.center
        return m

    def normalise(self, mesh: Any) -> Any:
        """A copy of a mesh/scene (or vertex array) mapped into [-1, 1]."""
        if isinstance(mesh, np.ndarray):
            return (np.asarray(mesh, dtype=np.float64) - self.center) / self.scale
        out = mesh.copy()
        out.apply_transform(np.linalg.inv(self.matrix()))
        return out

    def restore(self, mesh: Any) -> Any:
        """A copy of a mesh/scene (or vertex array) mapped from [-1, 1] to the input frame."""
        if isinstance(mesh, np.ndarray):
            return np.asarray(mesh, dtype=np.float64) * self.scale + self.center
        out = mesh.copy()
        out.apply_transform(self.matrix())
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"center": [float(c) for c in self.center], "scale": float(self.scale)}


class UpstreamModel(Model):
    """A model backed by an upstream package and a local weights folder."""

    package: ClassVar[str]
    """Importable top-level name checked by `availability()`."""
    weights_subdir: ClassVar[str]
    """Default folder of the weights under `weights_root`."""
    upstream: ClassVar[str]
    """Upstream repository and pinned commit, e.g. "microsoft/TRELLIS@6b0d647"."""
    extra_packages: ClassVar[tuple[str, ...]] = ()
    """Further importable names the adapter needs (e.g. "torch")."""
    required_weights: ClassVar[tuple[str, ...]] = ()
    """Files or folders that must exist under `weights_path` (relative paths)."""

    def __init__(
        self,
        weights_root: str = "weights",
        weights_dir: str | None = None,
        repo_dir: str | None = None,
        device: str = "cuda",
    ) -> None:
        self.weights_root = weights_root
        self.weights_dir = weights_dir
        self.repo_dir = repo_dir
        self.device = device

    @property
    def weights_path(self) -> Path:
        if self.weights_dir:
            return Path(self.weights_dir).expanduser()
        return Path(self.weights_root).expanduser() / self.weights_subdir

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    # -- availability -------------------------------------------------------------------

    def _find(self, name: str) -> bool:
        added = False
        if self.repo_dir and self.repo_dir not in sys.path:
            sys.path.insert(0, self.repo_dir)
            added = True
        try:
            return importlib.util.find_spec(name) is not None
        except Exception:  # a broken parent package or invalid name: not importable
            return False
        finally:
            if added:
                try:
                    sys.path.remove(str(self.repo_dir))
                except ValueError:
                    pass

    def availability(self) -> str | None:
        try:
            for name in (self.package, *self.extra_packages):
                if not self._find(name):
                    where = f" (also looked in {self.repo_dir})" if self.repo_dir else ""
                    return (
                        f"{self.model_id}: Python package {name!r} is not installed{where}; "
                        f"it comes from {self.upstream}"
                    )
            path = self.weights_path
            if not path.is_dir():
                return f"{self.model_id}: weights folder {path} does not exist"
            if not any(path.iterdir()):
                return f"{self.model_id}: weights folder {path} is empty"
            for rel in self.required_weights:
                if not (path / rel).exists():
                    return f"{self.model_id}: weights file {path / rel} is missing"
        except Exception as exc:  # availability must never raise
            return f"{self.model_id}: cannot check availability: {exc}"
        return None

    # -- running upstream code ----------------------------------------------------------

    def guarded(self, stage: str) -> AbstractContextManager[None]:
        """Map failures inside upstream code: CUDA OOM -> ModelOutOfMemory (after freeing
        the cache), anything else -> ModelInputError naming the model and the stage.
        Cancellation and MeshForge errors pass through unchanged."""
        return self._guarded(stage)

    @contextmanager
    def _guarded(self, stage: str) -> Iterator[None]:
        try:
            yield
        except (JobCancelled, MeshForgeError):
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                # Drop the locals of the finished upstream frames (their tensors) before
                # returning the cached blocks, so the replica recovers its memory.
                traceback.clear_frames(exc.__traceback__)
                self.free_cuda()
                raise ModelOutOfMemory(
                    f"{self.model_id} ran out of GPU memory during {stage}", detail=str(exc)
                ) from None
            raise ModelInputError(f"{self.model_id} failed during {stage}: {exc}") from exc

    @staticmethod
    def free_cuda() -> None:
        """Collect garbage and return cached CUDA blocks to the driver, if torch has CUDA."""
        free_accelerator_memory()

    @staticmethod
    def seed_everything(seed: int | None) -> int:
        """Seed random, numpy and torch (CPU and CUDA); draws a seed when None. Returns the
        seed used, for generation_info."""
        if seed is None:
            seed = secrets.randbelow(2**31 - 1)
        seed = int(seed)
        random.seed(seed)
        np.random.seed(seed % _SEED_MODULUS)
        torch: Any = sys.modules.get("torch")
        if torch is None and importlib.util.find_spec("torch") is not None:
            torch = importlib.import_module("torch")
        if torch is not None:
            torch.manual_seed(seed)
            try:
                if torch.cuda.is_available():
                    torch.cuda.manual_seed_all(seed)
            except Exception:
                pass
        return seed

    @contextmanager
    def in_repo_dir(self) -> Iterator[None]:
        """Run with the upstream checkout as working directory and on sys.path (upstream
        code that reads configs by relative path needs it). No-op without repo_dir."""
        if not self.repo_dir:
            yield
            return
        previous = os.getcwd()
        added = self.repo_dir not in sys.path
        if added:
            sys.path.insert(0, self.repo_dir)
        os.chdir(self.repo_dir)
        try:
            yield
        finally:
            os.chdir(previous)
            if added:
                try:
                    sys.path.remove(self.repo_dir)
                except ValueError:
                    pass

    # -- helpers for adapters -----------------------------------------------------------

    def base_info(self, **fields: Any) -> dict[str, Any]:
        """generation_info fields every upstream adapter reports."""
        return {
            "model": self.model_id,
            "upstream": self.upstream,
            "method": self.spec.method,
            "device": self.device,
            **fields,
        }


def export_output(obj: Any, fmt: str) -> bytes:
    """A trimesh Trimesh/Scene as bytes in one of the output formats (FBX via assimp)."""
    from deployments.geometry.mesh_io import export_mesh

    return export_mesh(obj, fmt)


class SharedCache:
    """Objects (loaded pipelines) shared by the models of one process: loaded by the first
    model that asks, dropped when the last holder releases it. Holders are counted once
    each, so a repeated load or unload of one model does not skew the count."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[Any, set[int]]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: Hashable, holder: object, loader: Callable[[], Any]) -> Any:
        """The object under `key`, made by `loader` when nobody holds it yet."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = (loader(), set())
                self._entries[key] = entry
            entry[1].add(id(holder))
            return entry[0]

    def release(self, key: Hashable, holder: object) -> bool:
        """Drop `holder`'s use; True when it was the last and the object was dropped."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False
            entry[1].discard(id(holder))
            if entry[1]:
                return False
            del self._entries[key]
            return True

    def holders(self) -> dict[Hashable, int]:
        """Each cached key and how many holders it has."""
        with self._lock:
            return {key: len(users) for key, (_, users) in self._entries.items()}

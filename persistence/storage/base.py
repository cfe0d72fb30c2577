"""The object-store contract. Keys, never server paths, cross process boundaries.

Keys look like `uploads/{file_id}/{filename}`, `jobs/{job_id}/inputs/...` and
`jobs/{job_id}/outputs/...`. A key is a relative POSIX path of safe segments.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


class ObjectNotFound(KeyError):
    """No object under the key."""


class InvalidKey(ValueError):
    """A key with empty, dot-only or unsafe segments."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None = None


def check_key(key: str) -> str:
    """Return `key` if every segment is safe (no `..`, no absolute path), else raise InvalidKey."""
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") or not _SEGMENT.match(p) for p in parts):
        raise InvalidKey(f"invalid object key: {key!r}")
    return key


class ObjectStore(ABC):
    """Blocking object store; call it from a thread pool in async code."""

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo:
        """Store the file at `path` under `key` (atomically: readers never see half an object)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Store `data` under `key` (atomically)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """Whole object; raises ObjectNotFound."""

    @abstractmethod
    def get_file(self, key: str, path: Path) -> None:
        """Copy the object into the local file `path`; raises ObjectNotFound."""

    @abstractmethod
    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream the object; raises ObjectNotFound before the first chunk."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Size and content type; raises ObjectNotFound."""

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Delete one object; False if it was not there."""

    @abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Objects whose key starts with `prefix` (a folder-like prefix ending in `/`)."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many went."""
        return sum(1 for info in self.list(prefix) if self.delete(info.key))

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy one object to another key."""
        info = self.stat(src)
        return self.put_bytes(dst, self.get_bytes(src), info.content_type)

    def check(self) -> None:
        """Raise if the store is unreachable (used by health checks)."""
        self.list("__health__/")

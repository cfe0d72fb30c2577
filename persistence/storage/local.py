"""Object store on a local directory: one file per key, written atomically.

A key maps to `root/<key>`. Writes go to a hidden temporary file in the target's own
folder (so the final `os.replace` is a same-filesystem rename and readers never see half
an object). Temporary names contain `~`, which no key segment may hold, so they can never
collide with an object and `list` never reports them.

Content types are not stored: they are guessed from the key's extension, so `stat`
reports the same type whatever was passed to `put_*`.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import stat as stat_mod
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from persistence.storage.base import InvalidKey, ObjectInfo, ObjectNotFound, ObjectStore, check_key

DEFAULT_CONTENT_TYPE = "application/octet-stream"

# Mesh formats that `mimetypes` does not know, or knows under another name.
_MESH_TYPES = {
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".obj": "application/wavefront-obj",
    ".ply": "application/x-ply",
    ".stl": "model/stl",
    ".fbx": "model/fbx",
}

_TMP_PREFIX = ".~"
_TMP_SUFFIX = "~.tmp"
_FILE_MODE = 0o644
_MKDIR_ATTEMPTS = 5


def guess_content_type(key: str) -> str:
    """Content type of `key` from its extension; octet-stream when unknown."""
    suffix = os.path.splitext(key)[1].lower()
    if suffix in _MESH_TYPES:
        return _MESH_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it can start a valid key (empty means everything), else raise.

    Appending one safe character turns any acceptable prefix (`jobs/`, `jobs/j1`) into a
    valid key, and leaves unsafe ones (`../`, `/abs`, `a//`) invalid.
    """
    if prefix:
        try:
            check_key(prefix + "_")
        except InvalidKey:
            raise InvalidKey(f"invalid object key prefix: {prefix!r}") from None
    return prefix


def _fsync(path: Path) -> None:
    """Flush a written file to disk so the rename that follows publishes complete data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit(target: Path, fill: Callable[[Path], object]) -> None:
    """Write `target` atomically: `fill` writes a temp file beside it, which then replaces it.

    On any failure the temp file is removed and `target` is left as it was.
    """
    tmp = _temp_beside(target)
    try:
        fill(tmp)
        os.chmod(tmp, _FILE_MODE)
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temp_beside(target: Path) -> Path:
    """Create an empty temp file in `target`'s folder, creating the folder if needed.

    A concurrent `delete` may prune the freshly created folder before the temp file lands in
    it; retry a few times. Once the temp file exists the folder is not empty, so it stays.
    """
    for attempt in range(_MKDIR_ATTEMPTS):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX, dir=target.parent)
        except FileNotFoundError:
            if attempt == _MKDIR_ATTEMPTS - 1:
                raise
            continue
        os.close(fd)
        return Path(name)
    raise AssertionError("unreachable")


class LocalStore(ObjectStore):
    """`ObjectStore` on a directory tree; suited to one machine or a shared filesystem."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root).resolve()
        self._root.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"LocalStore({str(self._root)!r})"

    # -- key to path ---------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """Path of `key`; the key must be valid and its resolved path stay inside the root."""
        check_key(key)
        path = (self._root / key).resolve()
        if path == self._root or not path.is_relative_to(self._root):
            raise InvalidKey(f"object key escapes the store root: {key!r}")
        return path

    def _existing(self, key: str) -> Path:
        """Path of an existing object (a regular file); raises ObjectNotFound."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path

    def _info(self, key: str, size: int) -> ObjectInfo:
        return ObjectInfo(key=key, size=size, content_type=guess_content_type(key))

    # -- writes --------------------------------------------------------------------------

    def _write(self, target: Path, fill: Callable[[Path], object]) -> None:
        """`_commit`, then on failure also remove the folders it created and left empty."""
        try:
            _commit(target, fill)
        except BaseException:
            self._prune(target.parent)
            raise

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo:
        """Copy `path` into the store (a copy, not a link: later edits of `path` don't leak in)."""
        target = self._path(key)
        source = Path(path)
        self._write(target, lambda tmp: shutil.copyfile(source, tmp))
        return self._info(key, target.stat().st_size)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        target = self._path(key)
        self._write(target, lambda tmp: tmp.write_bytes(data))
        return self._info(key, len(data))

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Copy file to file (kernel-side where possible) instead of through memory."""
        source = self._existing(src)
        target = self._path(dst)
        try:
            self._write(target, lambda tmp: shutil.copyfile(source, tmp))
        except FileNotFoundError as exc:
            if not source.is_file():
                raise ObjectNotFound(src) from exc
            raise
        return self._info(dst, target.stat().st_size)

    # -- reads ---------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        path = self._existing(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def get_file(self, key: str, path: Path) -> None:
        """Copy the object to `path` atomically (creating its folder)."""
        source = self._existing(key)
        try:
            _commit(Path(path), lambda tmp: shutil.copyfile(source, tmp))
        except FileNotFoundError as exc:
            if not source.is_file():
                raise ObjectNotFound(key) from exc
            raise

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream the object; the file is opened here, so a missing key raises right away.

        The generator is advanced once before it is returned: that opens the file and makes
        closing the generator (or dropping it) close the file, even if never iterated.
        """
        stream = self._chunks(key, chunk_size)
        next(stream)
        return stream

    def _chunks(self, key: str, chunk_size: int) -> Iterator[bytes]:
        path = self._existing(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        with handle:
            yield b""  # primer, consumed by iter_chunks
            while chunk := handle.read(chunk_size):
                yield chunk

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        if not stat_mod.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return self._info(key, st.st_size)

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Walk only the folder that holds `prefix`, keeping keys that start with it."""
        check_prefix(prefix)
        head = prefix.rpartition("/")[0]
        folder = self._path(head) if head else self._root
        found = [info for info in self._walk(folder) if info.key.startswith(prefix)]
        return sorted(found, key=lambda info: info.key)

    def _walk(self, folder: Path) -> Iterator[ObjectInfo]:
        """Regular files under `folder` whose relative path is a valid key (skips temp files)."""
        for dirpath, _dirnames, filenames in os.walk(folder):
            for name in filenames:
                path = Path(dirpath, name)
                key = path.relative_to(self._root).as_posix()
                try:
                    check_key(key)
                    st = path.lstat()
                except (InvalidKey, FileNotFoundError):
                    continue
                if stat_mod.S_ISREG(st.st_mode):
                    yield self._info(key, st.st_size)

    # -- deletes -------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """Remove the file, then the folders it leaves empty (never the root itself)."""
        path = self._path(key)
        if not path.is_file():
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._prune(path.parent)
        return True

    def _prune(self, folder: Path) -> None:
        """Remove empty folders from `folder` up to, not including, the root."""
        while folder != self._root and folder.is_relative_to(self._root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone / recreated): stop here
                return
            folder = folder.parent

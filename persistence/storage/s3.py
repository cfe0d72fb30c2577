"""Object store on an S3-compatible server (MinIO, AWS S3, ...) through the `minio` client.

S3 PUTs are atomic by nature (an object appears only once fully uploaded, multipart
included), so no temp-key dance is needed. Content types are stored on the object: the
one passed to `put_*`, else a guess from the key's extension (as the local store does).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from persistence.storage.base import ObjectInfo, ObjectNotFound, ObjectStore, check_key
from persistence.storage.local import check_prefix, guess_content_type

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})
_BUCKET_TAKEN_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_MAX_PRESIGN = timedelta(days=7)


@contextmanager
def _not_found_as(key: str) -> Iterator[None]:
    """Translate the S3 "no such object" errors into ObjectNotFound; re-raise the rest."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING_CODES:
            raise ObjectNotFound(key) from exc
        raise


class S3Store(ObjectStore):
    """`ObjectStore` on one bucket, created on first use if missing."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
    ) -> None:
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
        )
        self._bucket = bucket
        self._region = region
        self._ensure_bucket()

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def client(self) -> Minio:
        return self._client

    def __repr__(self) -> str:
        return f"S3Store(bucket={self._bucket!r})"

    def _ensure_bucket(self) -> None:
        """Create the bucket unless it exists; another process creating it first is fine."""
        if self._client.bucket_exists(self._bucket):
            return
        try:
            self._client.make_bucket(self._bucket, location=self._region)
        except S3Error as exc:
            if exc.code not in _BUCKET_TAKEN_CODES:
                raise

    # -- writes --------------------------------------------------------------------------

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo:
        """Upload `path` (multipart for big files; the object appears only when complete)."""
        check_key(key)
        size = Path(path).stat().st_size
        ctype = content_type or guess_content_type(key)
        self._client.fput_object(self._bucket, key, str(path), content_type=ctype)
        return ObjectInfo(key=key, size=size, content_type=ctype)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        check_key(key)
        ctype = content_type or guess_content_type(key)
        self._client.put_object(self._bucket, key, io.BytesIO(data), len(data), content_type=ctype)
        return ObjectInfo(key=key, size=len(data), content_type=ctype)

    def copy(self, src: str, dst: str) -> ObjectInfo:
        """Server-side copy; the data never passes through this process."""
        check_key(src)
        check_key(dst)
        with _not_found_as(src):
            self._client.copy_object(self._bucket, dst, CopySource(self._bucket, src))
        return self.stat(dst)

    # -- reads ---------------------------------------------------------------------------

    def get_bytes(self, key: str) -> bytes:
        check_key(key)
        with _not_found_as(key):
            response = self._client.get_object(self._bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_file(self, key: str, path: Path) -> None:
        """Download to `path` (the client writes a `.part` file, then renames it)."""
        check_key(key)
        with _not_found_as(key):
            self._client.fget_object(self._bucket, key, str(path))

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream the object; the GET is issued here, so a missing key raises right away.

        The generator is advanced once before it is returned: that sends the request and
        makes closing the generator (or dropping it) release the connection, even if it was
        never iterated.
        """
        check_key(key)
        stream = self._chunks(key, chunk_size)
        next(stream)
        return stream

    def _chunks(self, key: str, chunk_size: int) -> Iterator[bytes]:
        with _not_found_as(key):
            response = self._client.get_object(self._bucket, key)
        try:
            yield b""  # primer, consumed by iter_chunks
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        with _not_found_as(key):
            obj = self._client.stat_object(self._bucket, key)
        return ObjectInfo(key=key, size=obj.size or 0, content_type=obj.content_type)

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Objects under `prefix`; listings carry no content type, so it is None here."""
        check_prefix(prefix)
        objects = self._client.list_objects(self._bucket, prefix=prefix or None, recursive=True)
        return [
            ObjectInfo(key=obj.object_name, size=obj.size or 0)
            for obj in objects
            if obj.object_name and not obj.is_dir
        ]

    # -- deletes -------------------------------------------------------------------------

    def delete(self, key: str) -> bool:
        """S3 deletes are idempotent and silent, so stat first to report whether it existed."""
        if not self.exists(key):
            return False
        self._client.remove_object(self._bucket, key)
        return True

    # -- extras (not in the ObjectStore contract) ----------------------------------------

    def presigned_get_url(self, key: str, expires_s: float) -> str:
        """A URL that lets anyone GET the object for `expires_s` seconds (at most 7 days)."""
        check_key(key)
        expires = timedelta(seconds=expires_s)
        if not timedelta(seconds=1) <= expires <= _MAX_PRESIGN:
            raise ValueError(f"expires_s must be between 1 s and 7 days, got {expires_s}")
        return self._client.presigned_get_object(self._bucket, key, expires=expires)

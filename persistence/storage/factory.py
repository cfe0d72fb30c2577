"""Builds the configured object store; fails loudly on an unknown backend."""

from __future__ import annotations

from meshforge.settings import Settings
from persistence.storage.base import ObjectStore


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "local":
        from persistence.storage.local import LocalStore

        return LocalStore(settings.resolved_storage_root())
    if settings.storage_backend == "s3":
        from persistence.storage.s3 import S3Store

        return S3Store(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )
    raise ValueError(f"unknown storage backend {settings.storage_backend!r}")

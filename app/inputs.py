"""Job inputs: each slot comes as `<slot>_file_id`, `<slot>_base64` or `<slot>_path`, and is
copied under `jobs/{job_id}/inputs/{slot}/` so a job never depends on an upload's lifetime."""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.context import AppContext
from app.validation import check_file
from meshforge.errors import InvalidValue, NotFound, PayloadTooLarge
from persistence.files import require_file
from persistence.models import utcnow

SLOT_KIND = {"mesh": "mesh", "image": "image", "texture_image": "image"}


def _given(body: Any, slot: str) -> dict[str, Any]:
    values = {
        f"{slot}_{s}": getattr(body, f"{slot}_{s}", None) for s in ("file_id", "base64", "path")
    }
    return {k: v for k, v in values.items() if v not in (None, "")}


def confine_path(raw: str, allowed: list[Path]) -> Path:
    """Resolve a client-given server path inside the allowed directories, or refuse it."""
    if not allowed:
        raise InvalidValue(
            "Server paths are disabled; upload the file and send its file_id",
            {"hint": "POST /api/v1/file-upload/mesh or /image"},
        )
    if "\x00" in raw or ".." in Path(raw).parts:
        raise InvalidValue("Path not allowed", {"path": "refused"})
    try:
        resolved = Path(raw).resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound("No such file in the allowed directories") from None
    roots = [a.resolve() for a in allowed]
    if not any(resolved.is_relative_to(root) for root in roots):
        raise InvalidValue("Path not allowed", {"path": "refused"})
    if not stat.S_ISREG(os.stat(resolved).st_mode):
        raise InvalidValue("Path is not a regular file", {"path": "refused"})
    return resolved


def _decode_base64(text: str, limit: int, target: Path) -> None:
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if len(text) * 3 // 4 > limit:
        raise PayloadTooLarge(f"Base64 data exceeds the {limit // (1024 * 1024)} MB limit")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue("Base64 data is not valid base64") from None
    target.write_bytes(data)


class InputStager:
    """Validates and copies the inputs of one job; `cleanup()` undoes a partial staging."""

    def __init__(self, ctx: AppContext, job_id: str, owner_id: str | None = None) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.owner_id = owner_id
        self.written: list[str] = []

    def stage(self, body: Any, slots: dict[str, bool]) -> dict[str, Any]:
        """Blocking; run in a thread. `slots` maps slot name to whether it is required."""
        staged: dict[str, Any] = {}
        for slot, required in slots.items():
            given = _given(body, slot)
            if len(given) > 1:
                raise InvalidValue(
                    f"Provide only one of {', '.join(given)}", {"fields": sorted(given)}
                )
            if not given:
                if required:
                    names = [f"{slot}_file_id", f"{slot}_base64", f"{slot}_path"]
                    raise InvalidValue(f"Provide one of {', '.join(names)}", {"fields": names})
                continue
            ((field, value),) = given.items()
            staged[slot] = self._stage_one(slot, field, value)
        return staged

    def _key(self, slot: str, filename: str) -> str:
        return f"jobs/{self.job_id}/inputs/{slot}/{filename}"

    def _stage_one(self, slot: str, field: str, value: str) -> dict[str, Any]:
        kind = SLOT_KIND[slot]
        if field.endswith("_file_id"):
            record = require_file(self.ctx.engine, value, self.owner_id)
            if record.expires_at is not None and record.expires_at <= utcnow():
                raise NotFound(f"File {value} has expired", {"file_id": value})
            if record.file_type != kind:
                raise InvalidValue(
                    f"{field} must name an uploaded {kind}, not an {record.file_type}"
                    if record.file_type == "image"
                    else f"{field} must name an uploaded {kind}, not a {record.file_type}",
                    {"file_id": value},
                )
            key = self._key(slot, record.filename)
            self.ctx.store.copy(record.storage_key, key)
            self.written.append(key)
            return {
                "key": key,
                "filename": record.filename,
                "format": record.file_format,
                "file_id": record.id,
            }
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "input"
            settings = self.ctx.settings
            limit_mb = settings.mesh_max_size_mb if kind == "mesh" else settings.image_max_size_mb
            if field.endswith("_base64"):
                _decode_base64(value, limit_mb * 1024 * 1024, local)
                name = None
            else:
                source = confine_path(value, settings.allowed_input_dirs)
                if source.stat().st_size > limit_mb * 1024 * 1024:
                    raise PayloadTooLarge(f"File exceeds the {limit_mb} MB limit")
                shutil.copyfile(source, local)
                name = source.name
            checked = check_file(kind, local, name, settings.image_max_resolution, InvalidValue)
            key = self._key(slot, checked.filename)
            self.ctx.store.put_file(key, local, checked.content_type)
            self.written.append(key)
            return {"key": key, "filename": checked.filename, "format": checked.fmt}

    def cleanup(self) -> None:
        for key in self.written:
            self.ctx.store.delete(key)


def parse_iso(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or date-time as aware UTC (no zone means UTC); dates whose UTC
    time falls outside years 1-9999 (e.g. `0001-01-01T00:00+14:00`) are invalid."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidValue(f"{name} must be an ISO 8601 date", {name: value}) from None

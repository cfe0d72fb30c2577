"""Streaming multipart upload: the size limit holds while the body streams in, so an
oversize body is refused as soon as it passes the limit, never after it was read."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from meshforge.errors import FileUploadError, PayloadTooLarge

FIELD = "file"


class _Receiver:
    def __init__(self, target: Path, max_bytes: int) -> None:
        self.target = target
        self.max_bytes = max_bytes
        self.size = 0
        self.filename: str | None = None
        self.found = False
        self._fh: Any = None
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: setattr(self, "_field", self._field + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "_value", self._value + d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        if params.get(b"name", b"").decode("latin-1") == FIELD and not self.found:
            self.found = True
            raw = params.get(b"filename")
            self.filename = raw.decode("utf-8", "replace") if raw else None
            self._fh = self.target.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._fh is None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise PayloadTooLarge(
                f"File exceeds the {self.max_bytes // (1024 * 1024)} MB limit",
                {"max_size_mb": self.max_bytes // (1024 * 1024)},
            )
        self._fh.write(data[start:end])

    def _end(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        self._end()


async def receive_file(request: Request, max_bytes: int, folder: Path) -> tuple[Path, str | None]:
    """Stream the `file` field of a multipart body to a file in `folder`."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise FileUploadError("Send the file as multipart/form-data in a field named 'file'")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 1024 * 1024:
        raise PayloadTooLarge(
            f"File exceeds the {max_bytes // (1024 * 1024)} MB limit",
            {"max_size_mb": max_bytes // (1024 * 1024), "content_length": int(length)},
        )
    target = Path(tempfile.mkstemp(dir=folder, suffix=".upload")[1])
    receiver = _Receiver(target, max_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (PayloadTooLarge, FileUploadError):
        raise
    except Exception as exc:
        raise FileUploadError("Malformed multipart body") from exc
    finally:
        receiver.close()
    if not receiver.found:
        raise FileUploadError("No 'file' field in the multipart body")
    if receiver.size == 0:
        raise FileUploadError("The uploaded file is empty")
    return target, receiver.filename

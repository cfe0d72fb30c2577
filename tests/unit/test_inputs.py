from __future__ import annotations

import base64
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.inputs import InputStager, _decode_base64, confine_path, parse_iso
from app.validation import safe_filename
from meshforge.errors import InvalidValue, NotFound, PayloadTooLarge
from meshforge.settings import Settings


@pytest.fixture()
def roots(tmp_path: Path) -> tuple[Path, Path]:
    allowed = tmp_path / "allowed"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "a.obj").write_text("v 0 0 0\n")
    (outside / "secret.obj").write_text("v 1 1 1\n")
    return allowed, outside


def test_paths_refused_without_allowed_dirs(roots: tuple[Path, Path]) -> None:
    with pytest.raises(InvalidValue):
        confine_path(str(roots[0] / "a.obj"), [])


def test_path_inside_is_resolved(roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    assert confine_path(str(allowed / "a.obj"), [allowed]) == (allowed / "a.obj").resolve()


@pytest.mark.parametrize(
    "make",
    [
        lambda a, o: str(a / ".." / "outside" / "secret.obj"),
        lambda a, o: str(o / "secret.obj"),
        lambda a, o: "/etc/passwd",
        lambda a, o: str(a / "a.obj") + "\x00.png",
    ],
)
def test_escapes_are_refused(roots: tuple[Path, Path], make) -> None:  # type: ignore[no-untyped-def]
    allowed, outside = roots
    with pytest.raises(InvalidValue):
        confine_path(make(allowed, outside), [allowed])


def test_symlink_escape_and_devices(roots: tuple[Path, Path]) -> None:
    allowed, outside = roots
    os.symlink(outside / "secret.obj", allowed / "link.obj")
    with pytest.raises(InvalidValue):
        confine_path(str(allowed / "link.obj"), [allowed])
    with pytest.raises(InvalidValue):
        confine_path("/dev/null", [Path("/dev")])
    with pytest.raises(NotFound):
        confine_path(str(allowed / "missing.obj"), [allowed])


def test_base64(tmp_path: Path) -> None:
    target = tmp_path / "x"
    _decode_base64("data:model/obj;base64," + base64.b64encode(b"v 0 0 0").decode(), 100, target)
    assert target.read_bytes() == b"v 0 0 0"
    with pytest.raises(InvalidValue):
        _decode_base64("not base64!", 100, target)
    with pytest.raises(PayloadTooLarge):
        _decode_base64(base64.b64encode(b"x" * 200).decode(), 100, target)


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd.png", "obj") == "passwd.obj"
    assert safe_filename("my model (1).GLB", "glb") == "my_model_1.glb"
    assert safe_filename(None, "png") == "upload.png"


def test_parse_iso() -> None:
    assert parse_iso("2024-01-01T00:00:00Z", "d").tzinfo is not None  # type: ignore[union-attr]
    assert parse_iso("2024-01-01", "d").year == 2024  # type: ignore[union-attr]
    with pytest.raises(InvalidValue):
        parse_iso("yesterday", "d")


class _Store:
    """Just enough of an object store for InputStager."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.keys.append(key)

    def delete(self, key: str) -> None:
        self.keys.remove(key)


def _png(path: Path, side: int) -> Path:
    from PIL import Image

    Image.new("RGB", (side, side), (200, 30, 30)).save(path)
    return path


def _stager(allowed: Path, max_side: int = 64) -> InputStager:
    settings = Settings(allowed_input_dirs=[allowed], image_max_resolution=max_side)
    ctx = SimpleNamespace(settings=settings, store=_Store(), engine=None)
    return InputStager(ctx, "job_0123456789abcdef")  # type: ignore[arg-type]


def test_image_paths_are_confined_like_mesh_paths(roots: tuple[Path, Path]) -> None:
    """`image_path` and `texture_image_path` go through the same confinement as meshes."""
    allowed, outside = roots
    _png(outside / "secret.png", 16)
    os.symlink(outside / "secret.png", allowed / "link.png")
    stager = _stager(allowed)
    for slot in ("image", "texture_image"):
        for bad in ("/etc/passwd", str(allowed / "link.png"), "/dev/zero", str(outside)):
            body = SimpleNamespace(**{f"{slot}_path": bad})
            with pytest.raises(InvalidValue):
                stager.stage(body, {slot: True})
    assert stager.written == []


def test_image_resolution_limit_holds_for_paths_and_base64(roots: tuple[Path, Path]) -> None:
    allowed, _ = roots
    big, small = _png(allowed / "big.png", 65), _png(allowed / "small.png", 64)
    stager = _stager(allowed, max_side=64)
    with pytest.raises(InvalidValue, match="largest side"):
        stager.stage(SimpleNamespace(image_path=str(big)), {"image": True})
    encoded = base64.b64encode(big.read_bytes()).decode()
    with pytest.raises(InvalidValue, match="largest side"):
        stager.stage(SimpleNamespace(image_base64=encoded), {"image": True})
    staged = stager.stage(SimpleNamespace(image_path=str(small)), {"image": True})
    assert staged["image"]["format"] == "png" and "path" not in staged["image"]
    assert str(allowed) not in str(staged)  # the server path is not kept with the job

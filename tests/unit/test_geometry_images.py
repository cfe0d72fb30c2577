"""Image sniffing and validation, on the real texture and files derived from it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deployments.geometry.errors import ImageFormatError
from deployments.geometry.images import sniff_image_format, validate_image

PILLOW_NAMES = {"jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF", "png": "PNG"}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size in its IHDR but carries no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def texture(assets_dir: Path) -> Image.Image:
    return Image.open(assets_dir / "spot_texture.png").convert("RGB").resize((256, 192))


def test_validate_real_texture(assets_dir: Path) -> None:
    info = validate_image(assets_dir / "spot_texture.png", max_side=2048)
    assert info == {"format": "png", "width": 1024, "height": 1024, "mode": "RGB"}


@pytest.mark.parametrize("fmt", sorted(PILLOW_NAMES))
def test_every_format_sniffs_and_validates(texture: Image.Image, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"image.{fmt}"
    texture.save(path, PILLOW_NAMES[fmt])
    assert sniff_image_format(path.read_bytes()[:16]) == fmt
    info = validate_image(path, max_side=256)
    assert (info["format"], info["width"], info["height"]) == (fmt, 256, 192)


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_truncated_image_is_rejected(texture: Image.Image, tmp_path: Path, fmt: str) -> None:
    whole = tmp_path / f"whole.{fmt}"
    texture.save(whole, PILLOW_NAMES[fmt])
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageFormatError, match="not a valid"):
        validate_image(cut, max_side=1024)


def test_oversize_image_is_rejected(assets_dir: Path) -> None:
    with pytest.raises(ImageFormatError, match="1024x1024.*512"):
        validate_image(assets_dir / "spot_texture.png", max_side=512)


def test_declared_size_checked_before_decoding(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(_png_header_only(6000, 6000))  # no pixel data: decoding would fail
    with pytest.raises(ImageFormatError, match="6000x6000 pixels; the largest side allowed"):
        validate_image(big, max_side=4096)
    # past Pillow's own decompression-bomb limit its guard is converted, not leaked
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(20000, 20000))
    for max_side in (4096, 50000):
        with pytest.raises(ImageFormatError, match="too large"):
            validate_image(bomb, max_side=max_side)


def test_garbage_and_non_images_are_rejected(assets_dir: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "noise.png"
    garbage.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ImageFormatError):
        validate_image(garbage, max_side=1024)
    fake = tmp_path / "mesh.png"
    fake.write_bytes((assets_dir / "spot.obj").read_bytes())
    with pytest.raises(ImageFormatError):
        validate_image(fake, max_side=1024)
    with pytest.raises(ImageFormatError):
        validate_image(tmp_path / "missing.png", max_side=1024)
    assert sniff_image_format(b"") is None
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WAVE") is None


def test_magic_bytes() -> None:
    assert sniff_image_format(b"\xff\xd8\xff\xe0" + bytes(12)) == "jpg"
    assert sniff_image_format(b"II*\x00" + bytes(12)) == "tiff"
    assert sniff_image_format(b"MM\x00*" + bytes(12)) == "tiff"
    assert sniff_image_format(b"BM" + bytes(14)) == "bmp"
    assert sniff_image_format(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "webp"

"""The object-store contract, run against every backend.

`local` works on a temp folder; `s3` talks to a real S3 server (moto's standalone server,
see `tests/fixtures_s3.py`) with a fresh bucket per test.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from minio import Minio

from meshforge.settings import Settings
from persistence.storage import make_store
from persistence.storage.base import InvalidKey, ObjectNotFound, ObjectStore
from persistence.storage.local import LocalStore
from persistence.storage.s3 import S3Store

BACKENDS = ["local", "s3"]
INVALID_KEYS = ["../x", "/abs", "a//b", "a/./b", "", "a/../b", "a/", "a b", "a\\b"]
MESH = "Duck.glb"


def _unique_bucket() -> str:
    return f"mf-{uuid.uuid4().hex[:16]}"


def _settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for `backend`, everything passed explicitly so the environment can't leak in."""
    if backend == "local":
        return Settings.model_validate(
            {"storage_backend": "local", "data_dir": tmp_path, "storage_root": None}
        )
    server = request.getfixturevalue("s3_server")
    return Settings.model_validate(
        {
            "storage_backend": "s3",
            "s3_endpoint": server["endpoint"],
            "s3_access_key": server["access_key"],
            "s3_secret_key": server["secret_key"],
            "s3_bucket": _unique_bucket(),
            "s3_secure": False,
            "s3_region": "us-east-1",
        }
    )


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """One store per backend; the S3 server only starts when an s3 case runs."""
    return make_store(_settings(request.param, request, tmp_path / "store"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- round trips -------------------------------------------------------------------------


def test_put_get_bytes_round_trip(store: ObjectStore) -> None:
    data = os.urandom(3000) + b"\x00end"
    info = store.put_bytes("uploads/f1/blob.bin", data)
    assert info.key == "uploads/f1/blob.bin"
    assert info.size == len(data)
    assert store.get_bytes("uploads/f1/blob.bin") == data


def test_put_bytes_overwrites(store: ObjectStore) -> None:
    store.put_bytes("a/b.txt", b"first")
    store.put_bytes("a/b.txt", b"second, longer")
    assert store.get_bytes("a/b.txt") == b"second, longer"
    assert store.stat("a/b.txt").size == len(b"second, longer")


def test_put_file_get_file_preserves_content(
    store: ObjectStore, assets_dir: Path, tmp_path: Path
) -> None:
    source = assets_dir / MESH
    info = store.put_file(f"uploads/f2/{MESH}", source)
    assert info.size == source.stat().st_size
    target = tmp_path / "out" / "nested" / MESH
    store.get_file(f"uploads/f2/{MESH}", target)
    assert _sha256(target) == _sha256(source)


def test_iter_chunks_concatenate_to_content(store: ObjectStore, assets_dir: Path) -> None:
    data = (assets_dir / MESH).read_bytes()
    store.put_bytes(f"jobs/j1/inputs/{MESH}", data)
    chunks = list(store.iter_chunks(f"jobs/j1/inputs/{MESH}", chunk_size=4096))
    assert len(chunks) > 1
    assert b"".join(chunks) == data


def test_iter_chunks_can_be_closed_unread(store: ObjectStore) -> None:
    store.put_bytes("a/b.bin", b"x" * 10)
    stream = store.iter_chunks("a/b.bin")
    stream.close()  # type: ignore[attr-defined]
    assert store.get_bytes("a/b.bin") == b"x" * 10


# -- metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("m.glb", "model/gltf-binary"),
        ("m.gltf", "model/gltf+json"),
        ("m.obj", "application/wavefront-obj"),
        ("m.ply", "application/x-ply"),
        ("m.stl", "model/stl"),
        ("m.fbx", "model/fbx"),
        ("t.png", "image/png"),
        ("blob.unknownext", "application/octet-stream"),
    ],
)
def test_stat_size_and_guessed_content_type(
    store: ObjectStore, name: str, content_type: str
) -> None:
    store.put_bytes(f"jobs/j1/outputs/{name}", b"12345")
    info = store.stat(f"jobs/j1/outputs/{name}")
    assert (info.key, info.size, info.content_type) == (f"jobs/j1/outputs/{name}", 5, content_type)


def test_stat_after_put_file(store: ObjectStore, assets_dir: Path) -> None:
    store.put_file("uploads/f3/mesh.obj", assets_dir / "cow.obj")
    info = store.stat("uploads/f3/mesh.obj")
    assert info.size == (assets_dir / "cow.obj").stat().st_size
    assert info.content_type == "application/wavefront-obj"


def test_exists(store: ObjectStore) -> None:
    assert not store.exists("a/b.txt")
    store.put_bytes("a/b.txt", b"x")
    assert store.exists("a/b.txt")
    assert not store.exists("a")  # a "folder" is not an object


# -- listing and deletion ----------------------------------------------------------------


def _populate(store: ObjectStore) -> None:
    for key in (
        "jobs/j1/outputs/a.glb",
        "jobs/j1/outputs/sub/b.obj",
        "jobs/j1/inputs/c.png",
        "jobs/j10/outputs/d.glb",
        "uploads/u1/e.obj",
    ):
        store.put_bytes(key, key.encode())


def test_list_with_prefix(store: ObjectStore) -> None:
    _populate(store)
    listed = store.list("jobs/j1/")
    assert sorted(i.key for i in listed) == [
        "jobs/j1/inputs/c.png",
        "jobs/j1/outputs/a.glb",
        "jobs/j1/outputs/sub/b.obj",
    ]
    assert {i.key: i.size for i in listed}["jobs/j1/outputs/a.glb"] == len("jobs/j1/outputs/a.glb")
    assert [i.key for i in store.list("jobs/j1/outputs/sub/")] == ["jobs/j1/outputs/sub/b.obj"]
    assert store.list("nothing/here/") == []


def test_list_partial_prefix_and_everything(store: ObjectStore) -> None:
    _populate(store)
    assert sorted(i.key for i in store.list("jobs/j1")) == [
        "jobs/j1/inputs/c.png",
        "jobs/j1/outputs/a.glb",
        "jobs/j1/outputs/sub/b.obj",
        "jobs/j10/outputs/d.glb",
    ]
    assert len(store.list("")) == 5


def test_delete_returns_true_then_false(store: ObjectStore) -> None:
    store.put_bytes("a/b/c.txt", b"x")
    assert store.delete("a/b/c.txt") is True
    assert store.delete("a/b/c.txt") is False
    assert not store.exists("a/b/c.txt")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("a/b/c.txt")


def test_delete_prefix_counts(store: ObjectStore) -> None:
    _populate(store)
    assert store.delete_prefix("jobs/j1/") == 3
    assert store.delete_prefix("jobs/j1/") == 0
    assert sorted(i.key for i in store.list("")) == ["jobs/j10/outputs/d.glb", "uploads/u1/e.obj"]


def test_copy(store: ObjectStore, assets_dir: Path) -> None:
    data = (assets_dir / MESH).read_bytes()
    store.put_bytes("uploads/u1/in.glb", data)
    info = store.copy("uploads/u1/in.glb", "jobs/j1/inputs/in.glb")
    assert (info.key, info.size, info.content_type) == (
        "jobs/j1/inputs/in.glb",
        len(data),
        "model/gltf-binary",
    )
    assert store.get_bytes("jobs/j1/inputs/in.glb") == data
    assert store.get_bytes("uploads/u1/in.glb") == data
    with pytest.raises(ObjectNotFound):
        store.copy("uploads/u1/missing.glb", "jobs/j1/inputs/x.glb")


def test_check_passes(store: ObjectStore) -> None:
    store.check()


# -- errors ------------------------------------------------------------------------------


def test_missing_key_raises_object_not_found(store: ObjectStore, tmp_path: Path) -> None:
    key = "jobs/none/missing.glb"
    with pytest.raises(ObjectNotFound):
        store.get_bytes(key)
    with pytest.raises(ObjectNotFound):
        store.stat(key)
    with pytest.raises(ObjectNotFound):
        store.iter_chunks(key)  # raises on the call, before any chunk is asked for
    with pytest.raises(ObjectNotFound):
        store.get_file(key, tmp_path / "dl" / "missing.glb")
    assert not (tmp_path / "dl" / "missing.glb").exists()


def _calls(key: str, tmp_path: Path, assets_dir: Path) -> list[Callable[[ObjectStore], object]]:
    """Every store method, invoked with `key` wherever a key goes."""
    return [
        lambda s: s.put_bytes(key, b"x"),
        lambda s: s.put_file(key, assets_dir / MESH),
        lambda s: s.get_bytes(key),
        lambda s: s.get_file(key, tmp_path / "dl.bin"),
        lambda s: s.iter_chunks(key),
        lambda s: s.stat(key),
        lambda s: s.exists(key),
        lambda s: s.delete(key),
        lambda s: s.copy(key, "ok/dst.bin"),
        lambda s: s.copy("ok/src.bin", key),
    ]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_keys_rejected(
    store: ObjectStore, key: str, tmp_path: Path, assets_dir: Path
) -> None:
    store.put_bytes("ok/src.bin", b"x")
    for call in _calls(key, tmp_path, assets_dir):
        with pytest.raises(InvalidKey):
            call(store)


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//", "a/../"])
def test_invalid_prefixes_rejected(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        store.list(prefix)
    with pytest.raises(InvalidKey):
        store.delete_prefix(prefix)


# -- local backend specifics -------------------------------------------------------------


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_local_failed_put_file_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(FileNotFoundError):
        store.put_file("uploads/u1/gone.obj", tmp_path / "does-not-exist.obj")
    assert not store.exists("uploads/u1/gone.obj")
    assert _files_under(store.root) == []  # no temp file, no empty folders


def test_local_write_failing_midway_keeps_old_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_bytes("a/b.bin", b"old")

    def boom(fd: int) -> None:  # data is written, the commit is not done yet
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk on fire"):
        store.put_bytes("a/b.bin", b"new data that never lands")
    with pytest.raises(OSError, match="disk on fire"):
        store.put_bytes("a/c.bin", b"partial")
    monkeypatch.undo()
    assert store.get_bytes("a/b.bin") == b"old"
    assert not store.exists("a/c.bin")
    assert _files_under(store.root) == ["a", "a/b.bin"]


def test_local_temp_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_bytes("a/b.bin", b"x")
    (store.root / "a" / ".~leftover~.tmp").write_bytes(b"half")
    assert [i.key for i in store.list("")] == ["a/b.bin"]


def test_local_delete_prunes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.put_bytes("jobs/j1/outputs/deep/x.glb", b"x")
    store.put_bytes("jobs/j2/y.glb", b"y")
    assert store.delete("jobs/j1/outputs/deep/x.glb")
    assert _files_under(store.root) == ["jobs", "jobs/j2", "jobs/j2/y.glb"]
    assert store.delete("jobs/j2/y.glb")
    assert store.root.is_dir() and _files_under(store.root) == []


def test_local_symlink_escape_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    store = LocalStore(tmp_path / "root")
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        store.get_bytes("link/secret.txt")
    with pytest.raises(InvalidKey):
        store.put_bytes("link/new.txt", b"x")
    assert not (outside / "new.txt").exists()


def test_local_root_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "root"
    LocalStore(root)
    assert root.is_dir()


# -- S3 specifics ------------------------------------------------------------------------


def _s3(server: dict[str, str], bucket: str, region: str | None = "us-east-1") -> S3Store:
    return S3Store(
        endpoint=server["endpoint"],
        access_key=server["access_key"],
        secret_key=server["secret_key"],
        bucket=bucket,
        region=region,
    )


def test_s3_existing_bucket_is_reused(s3_server: dict[str, str]) -> None:
    bucket = _unique_bucket()
    first = _s3(s3_server, bucket)
    first.put_bytes("a/b.txt", b"kept")
    second = _s3(s3_server, bucket)
    assert second.get_bytes("a/b.txt") == b"kept"


def test_s3_bucket_created_concurrently_is_fine(
    s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _unique_bucket()
    # Outside us-east-1 a second create answers BucketAlreadyOwnedByYou (us-east-1 says OK).
    _s3(s3_server, bucket, region="eu-west-1").put_bytes("a/b.txt", b"kept")
    # Another process wins the race: the bucket appears between the check and the create.
    monkeypatch.setattr(Minio, "bucket_exists", lambda self, name: False)
    assert _s3(s3_server, bucket, region="eu-west-1").get_bytes("a/b.txt") == b"kept"


def test_s3_explicit_content_type_is_stored(s3_server: dict[str, str]) -> None:
    store = _s3(s3_server, _unique_bucket(), region=None)  # region looked up from the server
    store.put_bytes("a/b.bin", b"{}", content_type="application/json")
    assert store.stat("a/b.bin").content_type == "application/json"


def test_s3_presigned_url(s3_server: dict[str, str]) -> None:
    store = _s3(s3_server, _unique_bucket())
    url = store.presigned_get_url("a/b.glb", 60)
    assert url.startswith(f"http://{s3_server['endpoint']}/")
    assert "X-Amz-Signature=" in url
    with pytest.raises(ValueError):
        store.presigned_get_url("a/b.glb", 8 * 24 * 3600)


# -- factory -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_make_store_builds_backend(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings = _settings(backend, request, tmp_path)
    store = make_store(settings)
    assert isinstance(store, {"local": LocalStore, "s3": S3Store}[backend])
    if isinstance(store, LocalStore):
        assert store.root == (tmp_path / "storage").resolve()
    else:
        assert store.bucket == settings.s3_bucket
    store.put_bytes("a/b.txt", b"hello")
    assert make_store(settings).get_bytes("a/b.txt") == b"hello"


def test_make_store_rejects_unknown_backend(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path})
    settings = settings.model_copy(update={"storage_backend": "ftp"})
    with pytest.raises(ValueError, match="unknown storage backend"):
        make_store(settings)

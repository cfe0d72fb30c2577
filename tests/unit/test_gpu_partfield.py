"""partfield_mesh_segmentation against stand-ins of upstream PartField's modules (same
names and signatures: partfield.config.setup, model_trainer_pvcnn_only_demo.Model with
predict_step writing exp_results/<result_name>/part_feat_<uid>_0_batch.npy,
dataloader.Demo_Dataset, run_part_clustering's adjacency builders)."""

from __future__ import annotations

import io
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh

from deployments.base import JobContext, ModelInputError, ModelOutOfMemory, ModelOutput
from deployments.geometry.mesh_io import load_mesh
from deployments.partfield_mesh_segmentation import CHECKPOINT, PartFieldSegmentation

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.unit


class OutOfMemoryError(RuntimeError):
    """Named like torch.cuda.OutOfMemoryError."""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.fail: BaseException | None = None


def _standins(monkeypatch: pytest.MonkeyPatch, rec: Recorder) -> None:
    config = types.ModuleType("partfield.config")

    def setup(args: Any, freeze: bool = True) -> Any:
        rec.calls.append(("setup", (args.config_file, list(args.opts), freeze)))
        cfg = types.SimpleNamespace(
            dataset=types.SimpleNamespace(data_path="objaverse_data"),
            result_name="demo_test",
            n_sample_each=10000,
        )
        opts = list(args.opts)
        for key, value in zip(opts[::2], opts[1::2], strict=True):
            setattr(cfg, key, value)
        return cfg

    config.setup = setup  # type: ignore[attr-defined]

    trainer = types.ModuleType("partfield.model_trainer_pvcnn_only_demo")

    class Model:
        def __init__(self, cfg: Any) -> None:
            self.cfg = cfg
            rec.calls.append(("Model", cfg.continue_ckpt))

        def load_state_dict(self, state: dict[str, Any]) -> None:
            rec.calls.append(("load_state_dict", sorted(state)))

        def to(self, device: str) -> Model:
            rec.calls.append(("to", device))
            return self

        def eval(self) -> Model:
            return self

        def predict_step(self, batch: dict[str, Any], batch_idx: int) -> None:
            if rec.fail is not None:
                raise rec.fail
            uid = batch["uid"][0]
            vertices = batch["vertices"][0].cpu().numpy()
            faces = batch["faces"][0].cpu().numpy()
            rec.calls.append(("predict_step", (uid, vertices.copy(), os.getcwd())))
            save_dir = f"exp_results/{self.cfg.result_name}"
            os.makedirs(save_dir, exist_ok=True)
            centres = vertices[faces].mean(axis=1)
            feat = np.zeros((len(faces), 448), dtype=np.float32)
            feat[:, 0] = centres[:, 0] > 0  # two obvious parts: left and right half
            feat[:, 1] = centres[:, 0] <= 0
            feat[:, 2:] = 0.01
            np.save(f"{save_dir}/part_feat_{uid}_0_batch.npy", feat)

    trainer.Model = Model  # type: ignore[attr-defined]

    dataloader = types.ModuleType("partfield.dataloader")

    class Demo_Dataset:  # noqa: N801 - upstream's name
        def __init__(self, cfg: Any) -> None:
            self.data_path = cfg.dataset.data_path
            self.files = [f for f in os.listdir(self.data_path) if f.endswith((".obj", ".glb"))]
            self.result_name = cfg.result_name

        def __len__(self) -> int:
            return len(self.files)

        def __getitem__(self, index: int) -> dict[str, Any]:
            name = self.files[index]
            mesh: Any = trimesh.load(
                os.path.join(self.data_path, name), force="mesh", process=False
            )
            lo, hi = mesh.vertices.min(0), mesh.vertices.max(0)
            mesh.vertices = (mesh.vertices - (lo + hi) / 2) * (1.8 / (hi - lo).max())
            pc, _ = trimesh.sample.sample_surface(mesh, 1000)
            return {
                "uid": name.split(".")[-2],
                "pc": torch.tensor(pc, dtype=torch.float32),
                "vertices": mesh.vertices,  # a trimesh TrackedArray, as upstream
                "faces": mesh.faces,
            }

    dataloader.Demo_Dataset = Demo_Dataset  # type: ignore[attr-defined]

    clustering = types.ModuleType("run_part_clustering")

    def construct_face_adjacency_matrix_naive(face_list: Any) -> Any:
        from scipy.sparse import coo_matrix

        rec.calls.append(("adjacency", len(face_list)))
        mesh = trimesh.Trimesh(np.zeros((int(np.max(face_list)) + 1, 3)), face_list, process=False)
        pairs = mesh.face_adjacency
        n = len(face_list)
        data = np.ones(2 * len(pairs))
        rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
        cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
        return coo_matrix((data, (rows, cols)), shape=(n, n)).tocsr()

    clustering.construct_face_adjacency_matrix_naive = construct_face_adjacency_matrix_naive  # type: ignore[attr-defined]

    package = types.ModuleType("partfield")
    package.__path__ = []  # type: ignore[attr-defined]
    for name, module in [
        ("partfield", package),
        ("partfield.config", config),
        ("partfield.model_trainer_pvcnn_only_demo", trainer),
        ("partfield.dataloader", dataloader),
        ("run_part_clustering", clustering),
    ]:
        monkeypatch.setitem(sys.modules, name, module)


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    _standins(monkeypatch, recorder)
    return recorder


def _weights(tmp_path: Path) -> Path:
    folder = tmp_path / "weights" / "partfield"
    folder.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.zeros(1)}}, folder / CHECKPOINT)
    return folder


def _model(tmp_path: Path) -> PartFieldSegmentation:
    _weights(tmp_path)
    return PartFieldSegmentation(weights_root=str(tmp_path / "weights"), device="cpu")


def _run(model: PartFieldSegmentation, tmp_path: Path, mesh: Path, **params: Any) -> ModelOutput:
    work = tmp_path / "job"
    work.mkdir(exist_ok=True)
    stages: list[float] = []
    ctx = JobContext("job_pf", 1, work, on_progress=lambda _s, f: stages.append(f))
    out = model.run(ctx, {"mesh": mesh}, {"output_format": "glb", **params})
    assert stages == sorted(stages)
    return out


def test_availability_reasons(tmp_path: Path) -> None:
    model = PartFieldSegmentation(weights_root=str(tmp_path / "weights"))
    reason = model.availability()
    assert reason is not None and "partfield" in reason


def test_availability_needs_checkpoint(tmp_path: Path, rec: Recorder) -> None:
    (tmp_path / "weights" / "partfield").mkdir(parents=True)
    (tmp_path / "weights" / "partfield" / "other.bin").write_bytes(b"x")
    model = PartFieldSegmentation(weights_root=str(tmp_path / "weights"))
    model._find = lambda name: True  # type: ignore[method-assign]
    reason = model.availability()
    assert reason is not None and CHECKPOINT in reason


def test_segments_into_parts_in_input_frame(
    tmp_path: Path, rec: Recorder, assets_dir: Path
) -> None:
    model = _model(tmp_path)
    model.load()
    setup = next(c[1] for c in rec.calls if c[0] == "setup")
    assert setup[1][:2] == ["continue_ckpt", str(tmp_path / "weights" / "partfield" / CHECKPOINT)]
    assert ("to", "cpu") in rec.calls and ("load_state_dict", ["w"]) in rec.calls
    cwd = os.getcwd()
    source = assets_dir / "suzanne.obj"
    out = _run(model, tmp_path, source, num_parts=2, seed=7)
    assert os.getcwd() == cwd
    mesh = load_mesh(source)
    uid, normalised, where = next(c[1] for c in rec.calls if c[0] == "predict_step")
    assert uid == "input" and Path(where) == tmp_path / "job" / "partfield"
    assert np.abs(normalised).max() <= 0.9 + 1e-6  # PartField saw its normalised copy
    assert ("adjacency", len(mesh.faces)) in rec.calls

    labels_doc = json.loads(next(f.data for f in out.files if f.filename.endswith(".json")))
    labels = np.asarray(labels_doc["face_labels"])
    assert labels.shape == (len(mesh.faces),) and set(labels.tolist()) == {0, 1}
    x = mesh.triangles_center[:, 0] - mesh.bounds.mean(axis=0)[0]
    assert len(set(labels[x > 0.05])) == 1 and len(set(labels[x < -0.05])) == 1
    assert set(labels[x > 0.05]) != set(labels[x < -0.05])  # the feature halves came back
    glb = next(f for f in out.files if f.filename == "segmented_mesh.glb")
    assert glb.primary
    scene: Any = trimesh.load(io.BytesIO(glb.data), file_type="glb")
    assert sorted(scene.geometry) == ["part_00", "part_01"]
    assert np.allclose(scene.bounds, mesh.bounds, atol=1e-5)  # input frame and scale
    assert sum(len(g.faces) for g in scene.geometry.values()) == len(mesh.faces)
    assert out.result["num_parts"] == 2 and len(out.result["parts"]) == 2
    info = out.generation_info
    assert info["upstream"].startswith("nv-tlabs/PartField") and info["seed"] == 7
    assert info["clustering"] == "agglomerative"
    assert len(out.preview.geometry) == 2


def test_json_output_and_kmeans(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    _weights(tmp_path)
    model = PartFieldSegmentation(
        weights_root=str(tmp_path / "weights"), device="cpu", clustering="kmeans"
    )
    out = _run(model, tmp_path, assets_dir / "suzanne.obj", num_parts=3, output_format="json")
    assert [f.filename for f in out.files] == ["segmentation_labels.json"]
    assert out.files[0].primary
    assert not any(c[0] == "adjacency" for c in rec.calls)
    assert out.generation_info["clustering"] == "kmeans"


def test_too_many_parts(tmp_path: Path, rec: Recorder) -> None:
    tiny = tmp_path / "tri.obj"
    tiny.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\n")
    with pytest.raises(ModelInputError, match="num_parts"):
        _run(_model(tmp_path), tmp_path, tiny, num_parts=8)


def test_out_of_memory(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    rec.fail = OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    with pytest.raises(ModelOutOfMemory):
        _run(_model(tmp_path), tmp_path, assets_dir / "suzanne.obj", num_parts=2)


def test_upstream_exception(tmp_path: Path, rec: Recorder, assets_dir: Path) -> None:
    rec.fail = ValueError("bad triplane")
    with pytest.raises(ModelInputError, match="partfield_mesh_segmentation.*bad triplane"):
        _run(_model(tmp_path), tmp_path, assets_dir / "suzanne.obj", num_parts=2)

"""Mesh segmentation with PartField (nv-tlabs/PartField): learned per-face part features,
clustered into `num_parts` parts the way upstream's `run_part_clustering.py` does.

The features come from the upstream model's `predict_step` on upstream's `Demo_Dataset`
(the mesh normalised to [-0.9, 0.9] inside PartField); the labels index the faces of the
input mesh, so the parts are cut from the input mesh and stay in its frame and scale.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput, ModelSpec, OutputFile
from deployments.upstream import Frame, UpstreamModel, offline_env

CHECKPOINT = "model_objaverse.ckpt"
CONFIG = "configs/final/demo.yaml"
CLUSTERINGS = ("agglomerative", "kmeans")
ADJACENCY = {
    0: "construct_face_adjacency_matrix_naive",
    1: "construct_face_adjacency_matrix_facemst",
    2: "construct_face_adjacency_matrix_ccmst",
}
DEFAULT_PARTS = 8
INPUT_NAME = "input.glb"  # Demo_Dataset reads .obj/.glb/.off; uid = "input"


class PartFieldSegmentation(UpstreamModel):
    package = "partfield"
    extra_packages = ("torch", "sklearn")
    weights_subdir = "partfield"
    required_weights = (CHECKPOINT,)
    upstream = "nv-tlabs/PartField@50d56ce"

    spec = ModelSpec(
        model_id="partfield_mesh_segmentation",
        feature="mesh_segmentation",
        description=(
            "PartField: learned part features per face, clustered into num_parts parts "
            "(agglomerative on the face graph); per-part meshes and per-face labels"
        ),
        method="PartField triplane part features + agglomerative clustering",
        vram_mb=4096,
        ram_mb=4096,
        load_time_s=15.0,
        inputs=("mesh",),
        output_formats=("glb", "json"),
        default_params={"num_parts": DEFAULT_PARTS},
        details={
            "device": "cuda",
            "num_parts_range": [2, 32],
            "licence": "NVIDIA non-commercial (code and checkpoint)",
            "checkpoint": f"mikaelaangel/partfield-ckpt/{CHECKPOINT}",
        },
    )

    def __init__(
        self,
        weights_root: str = "weights",
        weights_dir: str | None = None,
        repo_dir: str | None = None,
        device: str = "cuda",
        config_file: str | None = None,
        clustering: str = "agglomerative",
        adjacency_option: int = 0,
        with_knn: bool = True,
        n_point_per_face: int = 1000,
        n_sample_each: int = 10000,
        preprocess_mesh: bool = False,
    ) -> None:
        super().__init__(weights_root, weights_dir, repo_dir, device)
        if clustering not in CLUSTERINGS:
            raise ValueError(f"clustering must be one of {CLUSTERINGS}, got {clustering!r}")
        if adjacency_option not in ADJACENCY:
            raise ValueError(f"adjacency_option must be one of {sorted(ADJACENCY)}")
        self.config_file = config_file
        self.clustering = clustering
        self.adjacency_option = adjacency_option
        self.with_knn = with_knn
        self.n_point_per_face = n_point_per_face
        self.n_sample_each = n_sample_each
        self.preprocess_mesh = preprocess_mesh
        self._model: Any = None
        self._cfg: Any = None

    @property
    def checkpoint(self) -> Path:
        return self.weights_path / CHECKPOINT

    def _config_path(self) -> str:
        if self.config_file:
            return self.config_file
        if self.repo_dir:
            return str(Path(self.repo_dir) / CONFIG)
        return CONFIG

    def load(self) -> None:
        offline_env()
        with self.in_repo_dir(), self.guarded("loading"):
            import torch
            from partfield.config import setup
            from partfield.model_trainer_pvcnn_only_demo import Model as PartFieldModel

            opts = [
                "continue_ckpt", str(self.checkpoint),
                "n_point_per_face", self.n_point_per_face,
                "n_sample_each", self.n_sample_each,
                "preprocess_mesh", self.preprocess_mesh,
                "is_pc", False,
            ]  # fmt: skip
            cfg = setup(types.SimpleNamespace(config_file=self._config_path(), opts=opts), False)
            model = PartFieldModel(cfg)
            state = torch.load(str(self.checkpoint), map_location="cpu", weights_only=False)
            model.load_state_dict(state["state_dict"] if "state_dict" in state else state)
            self._model = model.to(self.device).eval()
            self._cfg = cfg

    def unload(self) -> None:
        self._model = None
        self._cfg = None
        self.free_cuda()

    def check_health(self) -> None:
        """Called once loaded: the weights must still be there."""
        if self._model is None:
            raise RuntimeError(f"{self.model_id} lost its weights")

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import load_mesh

        if self._model is None:
            self.load()
        num_parts = int(params.get("num_parts") or DEFAULT_PARTS)
        ctx.progress("loading mesh", 0.05)
        try:
            mesh = load_mesh(inputs["mesh"])
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        if num_parts > len(mesh.faces):
            raise ModelInputError(
                f"num_parts {num_parts} exceeds the mesh's {len(mesh.faces)} faces"
            )
        seed = self.seed_everything(params.get("seed"))
        ctx.progress("PartField features", 0.15)
        features, feature_source = self._features(ctx, mesh)
        ctx.progress(f"{self.clustering} clustering", 0.7)
        with self.in_repo_dir(), self.guarded("clustering"):
            labels = self._cluster(mesh, features, num_parts, seed)
        ctx.progress("writing output", 0.9)
        return self._output(mesh, labels, num_parts, seed, feature_source, params)

    # -- upstream feature extraction ----------------------------------------------------

    def _features(self, ctx: JobContext, mesh: Any) -> tuple[np.ndarray, str]:
        """One 448-d PartField feature per face of `mesh` (and where they came from)."""
        import trimesh

        job_dir = Path(ctx.work_dir) / "partfield"
        data_dir = job_dir / "input"
        data_dir.mkdir(parents=True, exist_ok=True)
        bare = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        bare.export(data_dir / INPUT_NAME)
        result_name = f"features_{ctx.job_id}_{ctx.attempt}"
        cfg = self._cfg
        cfg.dataset.data_path = str(data_dir)
        cfg.result_name = result_name
        with self.in_repo_dir(), self.guarded("feature extraction"):
            import torch
            from partfield.dataloader import Demo_Dataset
            from torch.utils.data import default_collate

            with _working_dir(job_dir):  # predict_step writes exp_results/<result_name>/
                dataset = Demo_Dataset(cfg)
                batch = _to_device(default_collate([dataset[0]]), self.device)
                device_type = "cuda" if str(self.device).startswith("cuda") else "cpu"
                with (
                    torch.no_grad(),
                    torch.autocast(device_type, torch.float16, enabled=device_type == "cuda"),
                ):
                    self._model.predict_step(batch, 0)
            out_dir = job_dir / "exp_results" / result_name
            feature_file = out_dir / "part_feat_input_0_batch.npy"
            if not feature_file.exists():
                raise RuntimeError("PartField wrote no feature file")
            features = np.load(feature_file).reshape(-1, 448).astype(np.float32)
        if len(features) == len(mesh.faces):
            return features, "per face of the input mesh"
        # preprocess_mesh merged vertices/faces: carry features over by nearest face centre
        processed: Any = trimesh.load(out_dir / "input_input_0.ply", force="mesh", process=False)
        if len(features) != len(processed.faces):
            raise ModelInputError(
                f"{self.model_id}: {len(features)} features for {len(processed.faces)} faces"
            )
        centres = Frame.of(mesh.vertices).restore(
            Frame.of(processed.vertices).normalise(processed.triangles_center)
        )
        from scipy.spatial import cKDTree

        _, nearest = cKDTree(centres).query(mesh.triangles_center)
        return features[nearest], "per face of the preprocessed mesh, mapped by nearest face"

    def _cluster(self, mesh: Any, features: np.ndarray, num_parts: int, seed: int) -> np.ndarray:
        """Upstream's clustering recipe, cut at `num_parts`; labels 0..k-1 by face order."""
        norms = np.linalg.norm(features, axis=-1, keepdims=True)
        feats = features / np.maximum(norms, 1e-12)
        if self.clustering == "kmeans":
            from sklearn.cluster import KMeans

            raw = KMeans(n_clusters=num_parts, random_state=seed, n_init=10).fit(feats).labels_
        else:
            import run_part_clustering
            from sklearn.cluster import AgglomerativeClustering

            build = getattr(run_part_clustering, ADJACENCY[self.adjacency_option])
            if self.adjacency_option == 0:
                adjacency = build(mesh.faces)
            else:
                adjacency = build(mesh.faces, mesh.vertices, with_knn=self.with_knn)
            clustering = AgglomerativeClustering(connectivity=adjacency, n_clusters=num_parts)
            raw = clustering.fit(feats).labels_
        _, first = np.unique(raw, return_index=True)
        order = np.argsort(first)  # number parts by first face, like a stable relabel
        remap = np.empty(len(order), dtype=np.int64)
        remap[order] = np.arange(len(order))
        _, inverse = np.unique(raw, return_inverse=True)
        return remap[inverse.reshape(-1)]

    # -- output ------------------------------------------------------------------------------

    def _output(
        self,
        mesh: Any,
        labels: np.ndarray,
        num_parts: int,
        seed: int,
        feature_source: str,
        params: dict[str, Any],
    ) -> ModelOutput:
        from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh
        from deployments.geometry.segment import segments_to_scene

        found = int(labels.max()) + 1
        scene = segments_to_scene(mesh, labels)
        counts = np.bincount(labels, minlength=found)
        parts = [
            {"part_id": i, "name": f"part_{i:02d}", "num_faces": int(c)}
            for i, c in enumerate(counts)
        ]
        doc = {
            "num_parts": found,
            "num_faces": int(len(labels)),
            "parts": parts,
            "face_labels": labels.astype(int).tolist(),
        }
        fmt = params["output_format"]
        files = [
            OutputFile(
                "segmentation_labels.json",
                json.dumps(doc).encode(),
                CONTENT_TYPES["json"],
                primary=fmt == "json",
            )
        ]
        if fmt != "json":
            data = export_mesh(scene, fmt)
            files.insert(0, OutputFile(f"segmented_mesh.{fmt}", data, CONTENT_TYPES[fmt], True))
        info = self.base_info(
            num_parts=found,
            requested_num_parts=num_parts,
            seed=seed,
            clustering=self.clustering,
            adjacency=ADJACENCY[self.adjacency_option] if self.clustering != "kmeans" else None,
            n_point_per_face=self.n_point_per_face,
            preprocess_mesh=self.preprocess_mesh,
            features=feature_source,
            frame="parts cut from the input mesh: input frame and scale kept",
            checkpoint=CHECKPOINT,
        )
        return ModelOutput(
            files=files,
            preview=scene,
            result={"num_parts": found, "parts": parts},
            generation_info=info,
        )


def _to_device(batch: Any, device: str) -> Any:
    """Tensors of a collated batch moved to `device` (strings and lists kept)."""
    if hasattr(batch, "to") and callable(batch.to):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@contextmanager
def _working_dir(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)

"""UV unwrapping with PartUV (EricWang12/PartUV): a PartField part hierarchy, then charts
per part under the distortion threshold; packing with Blender in a process of its own.

PartField normalises the mesh in place inside `partuv.preprocess`; the unwrapped mesh is
mapped back from that frame to the input's position and scale before it is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput, ModelSpec, OutputFile
from deployments.upstream import Frame, UpstreamModel, offline_env
from deployments.upstream_subprocess import run_step

CHECKPOINT = "model_objaverse.ckpt"
DEFAULT_THRESHOLD = 1.25
PACK_METHODS = ("blender", "none", "uvpackmaster")
MAX_PART_FILES = 32
MAX_CHARTS_LISTED = 1000
PACK_MARGIN = 0.001
# Upstream's pack/pack_blender.py steps (import the OBJ, pack all islands, export the OBJ),
# for installs without the repository checkout. argv: input OBJ, output OBJ, margin.
BPY_PACK = """
import sys
import bpy
src, dst, margin = sys.argv[1], sys.argv[2], float(sys.argv[3])
if bpy.ops.object.mode_set.poll():
    bpy.ops.object.mode_set(mode='OBJECT')
bpy.ops.object.select_all(action='SELECT')
bpy.ops.object.delete()
bpy.ops.wm.obj_import(filepath=src)
bpy.ops.object.select_all(action='SELECT')
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_all(action='SELECT')
bpy.ops.uv.select_all(action='SELECT')
bpy.ops.uv.pack_islands(margin=margin)
bpy.ops.object.mode_set(mode='OBJECT')
bpy.ops.object.select_all(action='SELECT')
bpy.ops.wm.obj_export(filepath=dst, export_selected_objects=True, export_materials=False,
                      export_normals=False)
"""


class PartUvUnwrapping(UpstreamModel):
    package = "partuv"
    extra_packages = ("torch",)
    weights_subdir = "partfield"
    required_weights = (CHECKPOINT,)
    upstream = "EricWang12/PartUV@e4d5afc (partuv 0.1.2)"

    spec = ModelSpec(
        model_id="partuv_uv_unwrapping",
        feature="uv_unwrapping",
        description="PartUV - Part-based UV unwrapping with minimal distortion",
        method="Hierarchical part-based unwrapping",
        vram_mb=7168,
        ram_mb=8192,
        load_time_s=15.0,
        inputs=("mesh",),
        output_formats=("obj", "glb"),
        default_params={
            "distortion_threshold": DEFAULT_THRESHOLD,
            "pack_method": "blender",
            "save_individual_parts": True,
            "save_visuals": False,
        },
        details={
            "device": "cuda",
            "features": [
                "Automatic part segmentation",
                "Distortion minimization",
                "Multiple packing options",
            ],
            "recommended_for": "General purpose, production assets",
            "pack_methods": ["blender", "none"],
            "licence": "Apache-2.0; bundled PartField code and checkpoint NVIDIA non-commercial",
        },
    )

    def __init__(
        self,
        weights_root: str = "weights",
        weights_dir: str | None = None,
        repo_dir: str | None = None,
        device: str = "cuda",
        config_path: str | None = None,
        blender_python: str | None = None,
        unwrap_method: str = "abf",
        sample_on_faces: int = 10,
        sample_batch_size: int = 100_000,
        merge_vertices_epsilon: float | None = 1e-7,
        num_omp_threads: int = 8,
        pack_timeout_s: float = 600.0,
    ) -> None:
        super().__init__(weights_root, weights_dir, repo_dir, device)
        self.config_path = config_path
        self.blender_python = blender_python or sys.executable
        self.unwrap_method = unwrap_method
        self.sample_on_faces = sample_on_faces
        self.sample_batch_size = sample_batch_size
        self.merge_vertices_epsilon = merge_vertices_epsilon
        self.num_omp_threads = num_omp_threads
        self.pack_timeout_s = pack_timeout_s
        self._pf_model: Any = None

    @property
    def checkpoint(self) -> Path:
        return self.weights_path / CHECKPOINT

    def load(self) -> None:
        offline_env()
        with self.guarded("loading PartField"):
            from partuv.preprocess_utils.partfield_official.run_PF import PFInferenceModel

            self._pf_model = PFInferenceModel(
                checkpoint_path=str(self.checkpoint), device=self.device
            )

    def unload(self) -> None:
        self._pf_model = None
        self.free_cuda()

    def check_health(self) -> None:
        if self._pf_model is None:
            raise RuntimeError(f"{self.model_id} is not loaded")

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        threshold, pack = _check_params(params)
        if self._pf_model is None:
            self.load()
        work = Path(ctx.work_dir) / "partuv"
        work.mkdir(parents=True, exist_ok=True)
        ctx.progress("loading mesh", 0.05)
        source = self._write_input(inputs["mesh"], work)
        input_frame = Frame.of(_obj_vertices(source))
        ctx.progress("PartField part hierarchy", 0.1)
        with self.guarded("preprocessing"):
            import partuv

            mesh, _, tree_dict, _ = partuv.preprocess(
                str(source),
                self._pf_model,
                str(work / "out" / "mesh"),
                save_tree_file=False,
                save_processed_mesh=False,
                sample_on_faces=self.sample_on_faces,
                sample_batch_size=self.sample_batch_size,
                merge_vertices_epsilon=self.merge_vertices_epsilon,
            )
        # preprocess hands back PartField's normalised copy: map it onto the input's box
        normalised = Frame.of(np.asarray(mesh.vertices))
        ctx.progress("unwrapping parts", 0.45)
        with self.guarded("unwrapping"):
            final_parts, individual_parts = partuv.pipeline_numpy(
                V=np.asarray(mesh.vertices),
                F=np.asarray(mesh.faces),
                tree_dict=tree_dict,
                configPath=self._config(work, threshold),
                threshold=threshold,
                pack_final_mesh=False,
            )
            final = final_parts.to_components()
        if final_parts.num_components == 0 or len(final.F) == 0:
            raise ModelInputError(f"{self.model_id} produced no UV charts for this input")
        charts = [
            {"chart_id": i, "num_faces": int(len(c.F)), "distortion": round(float(c.distortion), 4)}
            for i, c in enumerate(final_parts.components)
        ]
        face_chart = _face_chart(charts, len(final.F))
        vertices = np.asarray(final.V, dtype=np.float64)
        faces = np.asarray(final.F, dtype=np.int64)
        uvs = np.asarray(final.UV, dtype=np.float64)[:, :2]
        if pack == "blender":
            ctx.progress("packing with Blender", 0.7)
            vertices, faces, uvs, face_chart = self._pack(ctx, work, vertices, faces, uvs)
        restore = _restorer(normalised, input_frame)
        ctx.progress("writing output", 0.85)
        parts = [p.to_components() for p in individual_parts]
        return self._output(
            restore(vertices), faces, uvs, face_chart, charts, parts, restore,
            final_parts, threshold, pack, params,
        )  # fmt: skip

    # -- steps ---------------------------------------------------------------------------

    def _write_input(self, path: Path, work: Path) -> Path:
        """The input as a plain OBJ (geometry only; PartUV drops existing UVs anyway)."""
        import trimesh

        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import load_mesh

        try:
            mesh = load_mesh(path)
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        target = work / "input" / "mesh.obj"
        target.parent.mkdir(parents=True, exist_ok=True)
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(target)
        return target

    def _config(self, work: Path, threshold: float) -> str:
        """The PartUV pipeline config (the wheel ships none): the operator's file, else one
        written for this job."""
        if self.config_path:
            return self.config_path
        on_gpu = str(self.device).startswith("cuda")
        text = (
            "verbose: false\n"
            "save_stuff: false\n"
            "num_cuda_streams: 10\n"
            "pipeline:\n"
            f"  threshold: {threshold}\n"
            "  parallelDepth: 10\n"
            "  component_maxDepth: 10\n"
            "  checkSelfIntersection: false\n"
            "  checkNon2Manifold: true\n"
            f"  num_omp_threads: {self.num_omp_threads}\n"
            "  num_cuda_streams: 10\n"
            "unwrap:\n"
            f'  method: "{self.unwrap_method}"\n'
            "  abf_iters: 5\n"
            "  agg_parts: 10\n"
            f"  pamo: {'true' if on_gpu else 'false'}\n"
        )
        path = work / "config.yaml"
        path.write_text(text)
        return str(path)

    def _pack(
        self, ctx: JobContext, work: Path, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Blender's island packing in its own process; returns the packed mesh arrays and
        a chart id per face (connected UV islands)."""
        import trimesh

        folder = work / "pack"
        folder.mkdir(parents=True, exist_ok=True)
        unpacked = folder / "final_components.obj"
        packed = folder / "final_packed.obj"
        mesh = trimesh.Trimesh(
            vertices, faces, visual=trimesh.visual.TextureVisuals(uv=uvs), process=False
        )
        mesh.export(unpacked, file_type="obj", include_normals=False)
        script = Path(self.repo_dir) / "pack" / "pack_blender.py" if self.repo_dir else None
        if script is not None and script.exists():
            command = [self.blender_python, str(script), "--mesh_folder", str(folder)]
        else:
            command = [self.blender_python, "-c", BPY_PACK, str(unpacked), str(packed)]
            command.append(str(PACK_MARGIN))
        run_step(
            ctx, self.model_id, "packing (bpy)", command, self.repo_dir, work / "pack.log",
            timeout_s=self.pack_timeout_s,
        )  # fmt: skip
        if not packed.exists():
            raise ModelInputError(f"{self.model_id}: Blender packing wrote no {packed.name}")
        out: Any = trimesh.load(packed, file_type="obj", force="mesh", process=False)
        out_uv = getattr(out.visual, "uv", None)
        if out_uv is None or len(out_uv) != len(out.vertices):
            raise ModelInputError(f"{self.model_id}: the packed mesh has no UVs")
        out_faces = np.asarray(out.faces, dtype=np.int64)
        return (
            np.asarray(out.vertices, dtype=np.float64),
            out_faces,
            np.asarray(out_uv, dtype=np.float64)[:, :2],
            _uv_islands(out_faces, len(out.vertices)),
        )

    def _output(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        uvs: np.ndarray,
        face_chart: np.ndarray,
        charts: list[dict[str, Any]],
        parts: list[Any],
        restore: Any,
        final_parts: Any,
        threshold: float,
        pack: str,
        params: dict[str, Any],
    ) -> ModelOutput:
        import trimesh

        from deployments.geometry.mesh_io import CONTENT_TYPES, export_mesh
        from deployments.geometry.segment import part_colors
        from deployments.geometry.uv_visual import uv_layout_png

        fmt = params["output_format"]
        mesh = trimesh.Trimesh(
            vertices, faces, visual=trimesh.visual.TextureVisuals(uv=uvs), process=False
        )
        name = "uv_mesh_packed" if pack == "blender" else "uv_mesh"
        files = [OutputFile(f"{name}.{fmt}", export_mesh(mesh, fmt), CONTENT_TYPES[fmt], True)]
        doc = {"charts": charts, "face_chart": face_chart.tolist()}
        files.append(OutputFile("uv_charts.json", json.dumps(doc).encode(), CONTENT_TYPES["json"]))
        part_info: list[dict[str, Any]] = []
        if params.get("save_individual_parts", True):
            for index, part in enumerate(parts[:MAX_PART_FILES]):
                piece = trimesh.Trimesh(
                    restore(np.asarray(part.V, dtype=np.float64)),
                    np.asarray(part.F, dtype=np.int64),
                    visual=trimesh.visual.TextureVisuals(uv=np.asarray(part.UV)[:, :2]),
                    process=False,
                )
                part_name = f"uv_part_{index:02d}.{fmt}"
                files.append(OutputFile(part_name, export_mesh(piece, fmt), CONTENT_TYPES[fmt]))
                part_info.append({"file": part_name, "num_faces": int(len(part.F))})
        if params.get("save_visuals", False):
            png = uv_layout_png(uvs, faces, face_chart)
            files.append(OutputFile("uv_layout.png", png, CONTENT_TYPES["png"]))
        preview = trimesh.Trimesh(vertices, faces, process=False)
        preview.visual = trimesh.visual.ColorVisuals(
            preview, face_colors=part_colors(int(face_chart.max()) + 1)[face_chart]
        )
        distortion = round(float(final_parts.distortion), 4)
        over = [c["chart_id"] for c in charts if c["distortion"] > threshold]
        uv_info = {
            "model": self.model_id,
            "num_uv_components": int(final_parts.num_components),
            "num_parts": len(parts),
            "final_distortion": distortion,
            "distortion_threshold": threshold,
            "charts_over_threshold": over,
            "pack_method": pack,
            "components_info": charts[:MAX_CHARTS_LISTED],
            "components_info_complete": len(charts) <= MAX_CHARTS_LISTED,
            "individual_parts": part_info,
            "individual_parts_complete": len(parts) <= MAX_PART_FILES,
        }
        info = self.base_info(
            distortion_threshold=threshold,
            pack_method=pack,
            packing=(
                f"Blender uv.pack_islands(margin={PACK_MARGIN}) in its own process"
                if pack == "blender"
                else "none: each chart keeps its own unit-square layout (charts overlap)"
            ),
            unwrap_method=self.unwrap_method,
            sample_on_faces=self.sample_on_faces,
            frame="mapped back from PartField's normalised frame to the input's",
            checkpoint=CHECKPOINT,
        )
        return ModelOutput(
            files=files,
            preview=preview,
            result={"num_components": int(final_parts.num_components), "distortion": distortion,
                    "uv_info": uv_info},
            generation_info=info,
        )  # fmt: skip


def _check_params(params: dict[str, Any]) -> tuple[float, str]:
    threshold = float(params.get("distortion_threshold") or DEFAULT_THRESHOLD)
    if not 1.0 <= threshold <= 5.0:
        raise ModelInputError(f"distortion_threshold must be between 1.0 and 5.0, got {threshold}")
    pack = str(params.get("pack_method") or "blender")
    if pack == "uvpackmaster":
        raise ModelInputError(
            "UVPackMaster is not installed on this server (it is a paid Blender add-on); "
            "use pack_method 'blender' for a packed atlas or 'none' for unpacked charts"
        )
    if pack not in PACK_METHODS:
        raise ModelInputError(f"unknown pack_method {pack!r}; expected one of {PACK_METHODS}")
    return threshold, pack


def _obj_vertices(path: Path) -> np.ndarray:
    import trimesh

    loaded: Any = trimesh.load(path, force="mesh", process=False)
    return np.asarray(loaded.vertices)


def _restorer(normalised: Frame, original: Frame) -> Any:
    def restore(vertices: np.ndarray) -> np.ndarray:
        return np.asarray(original.restore(normalised.normalise(vertices)))

    return restore


def _face_chart(charts: list[dict[str, Any]], num_faces: int) -> np.ndarray:
    """Chart id per face of the combined mesh (components are concatenated in order)."""
    sizes = [c["num_faces"] for c in charts]
    if sum(sizes) == num_faces:
        return np.repeat(np.arange(len(sizes)), sizes)
    return np.zeros(num_faces, dtype=np.int64)


def _uv_islands(faces: np.ndarray, num_vertices: int) -> np.ndarray:
    """Connected components of faces sharing vertices (OBJ charts are split at seams)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.repeat(np.arange(len(faces)), 3)
    graph = coo_matrix(
        (np.ones(len(rows)), (rows, faces.reshape(-1))), shape=(len(faces), num_vertices)
    ).tocsr()
    adjacency = graph @ graph.T
    _, labels = connected_components(adjacency, directed=False)
    return np.asarray(labels, dtype=np.int64)

"""Auto-rigging with UniRig (VAST-AI-Research/UniRig): an autoregressive skeleton, then
predicted skinning weights, merged onto the input asset.

UniRig uses Blender's `bpy` in every stage (mesh import for extraction, FBX export of the
skeleton and skin, the final merge) and bpy keeps one global, thread-unsafe scene, so each
stage runs as upstream's own script in a process of its own, with the upstream checkout as
working directory (its configs are read by relative path). The merge step puts the rig on
the original asset and denormalises it, so the output keeps the input's frame and scale.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from deployments.base import JobContext, ModelInputError, ModelOutput, ModelSpec, OutputFile
from deployments.upstream import UpstreamModel, offline_env
from deployments.upstream_subprocess import log_tail, run_step

SKELETON_CKPT = "skeleton/articulation-xl_quantization_256/model.ckpt"
SKIN_CKPT = "skin/articulation-xl/model.ckpt"
SKELETON_TASK = "configs/task/quick_inference_skeleton_articulationxl_ar_256.yaml"
SKIN_TASK = "configs/task/quick_inference_unirig_skin.yaml"
DATA_CONFIG = "configs/data/quick_inference.yaml"
SUFFIXES = "obj,fbx,FBX,dae,glb,gltf,vrm"
DEFAULT_SEED = 12345  # upstream launch scripts' default
RIG_MODES = {
    "skeleton": "UniRig skeleton (stage 1) merged onto the asset as an armature; no weights",
    "skin": "skeleton + UniRig skinning weights (up to 4 bones per vertex), merged",
    "full": "same as skin: UniRig has no further stage (no animation is generated)",
}
_CHECKPOINT_LINE = re.compile(r"^resume_from_checkpoint:.*$", re.MULTILINE)


class UniRigAutoRig(UpstreamModel):
    package = "src.inference"
    extra_packages = ("torch", "lightning", "bpy")
    weights_subdir = "unirig"
    required_weights = (SKELETON_CKPT, SKIN_CKPT)
    upstream = "VAST-AI-Research/UniRig@ed4acac"

    spec = ModelSpec(
        model_id="unirig_auto_rig",
        feature="auto_rig",
        description=(
            "UniRig: autoregressive skeleton and learned skinning weights, merged onto the "
            "input asset (textures kept), as FBX or GLB"
        ),
        method="UniRig skeleton tree tokens (GPT) + bone-point cross-attention skinning",
        vram_mb=9216,
        ram_mb=8192,
        load_time_s=20.0,
        inputs=("mesh",),
        output_formats=("fbx", "glb"),
        default_params={"rig_mode": "skeleton"},
        details={
            "device": "cuda",
            "rig_modes": RIG_MODES,
            "max_influences": 4,
            "faces_target_count": 50000,
            "licence": "MIT (Blender bpy: GPL)",
        },
    )

    def __init__(
        self,
        weights_root: str = "weights",
        weights_dir: str | None = None,
        repo_dir: str | None = None,
        device: str = "cuda",
        python: str | None = None,
        faces_target_count: int = 50000,
        step_timeout_s: float = 900.0,
    ) -> None:
        super().__init__(weights_root, weights_dir, repo_dir, device)
        self.python = python or sys.executable
        self.faces_target_count = faces_target_count
        self.step_timeout_s = step_timeout_s

    def availability(self) -> str | None:
        reason = super().availability()
        if reason is not None:
            return reason
        if not self.repo_dir or not (Path(self.repo_dir) / "run.py").is_file():
            return f"{self.model_id}: repo_dir must point at a UniRig checkout (with run.py)"
        return None

    def load(self) -> None:
        """UniRig's checkpoints are loaded by upstream's run.py inside each job's stage
        processes (see the module docstring); here the setup is only checked."""
        offline_env()
        reason = self.availability()
        if reason is not None:
            raise RuntimeError(reason)

    def check_health(self) -> None:
        reason = self.availability()
        if reason is not None:
            raise RuntimeError(reason)

    def run(self, ctx: JobContext, inputs: dict[str, Path], params: dict[str, Any]) -> ModelOutput:
        mode = str(params.get("rig_mode") or "skeleton")
        if mode not in RIG_MODES:
            raise ModelInputError(f"rig_mode must be one of {sorted(RIG_MODES)}, got {mode!r}")
        if not self.repo_dir:
            raise ModelInputError(f"{self.model_id}: no UniRig checkout configured (repo_dir)")
        offline_env()
        fmt = params["output_format"]
        seed = self.seed_everything(params.get("seed", DEFAULT_SEED))
        work = (Path(ctx.work_dir) / "unirig").resolve()
        work.mkdir(parents=True, exist_ok=True)
        ctx.progress("preparing the input", 0.03)
        asset = self._stage_input(inputs["mesh"], work)
        steps: list[str] = []
        ctx.progress("extracting the mesh (bpy)", 0.05)
        self._extract(ctx, asset, work, steps)
        ctx.progress("predicting the skeleton", 0.2)
        skeleton = work / "skeleton.fbx"
        task = self._task(SKELETON_TASK, SKELETON_CKPT, work)
        self._step(ctx, "skeleton prediction", steps, work, [
            "run.py", f"--task={task}", f"--seed={seed}", f"--input={asset}",
            f"--output={skeleton}", f"--npz_dir={work / 'npz'}",
        ], expect=skeleton)  # fmt: skip
        source = skeleton
        if mode in ("skin", "full"):
            ctx.progress("extracting the skeleton (bpy)", 0.45)
            self._extract(ctx, skeleton, work, steps)
            ctx.progress("predicting skinning weights", 0.55)
            skin = work / "skin.fbx"
            task = self._task(SKIN_TASK, SKIN_CKPT, work)
            self._step(ctx, "skin prediction", steps, work, [
                "run.py", f"--task={task}", f"--seed={seed}", f"--input={skeleton}",
                f"--output={skin}", f"--npz_dir={work / 'npz'}", "--data_name=raw_data.npz",
            ], expect=skin)  # fmt: skip
            source = skin
        outputs = {"glb": work / "rigged_mesh.glb"}
        if fmt == "fbx":
            outputs["fbx"] = work / "rigged_mesh.fbx"
        for index, (kind, target) in enumerate(outputs.items()):
            ctx.progress(f"merging the rig onto the asset ({kind}, bpy)", 0.8 + 0.07 * index)
            self._step(ctx, f"merge to {kind}", steps, work, [
                "-m", "src.inference.merge", f"--require_suffix={SUFFIXES}", "--num_runs=1",
                "--id=0", f"--source={source}", f"--target={asset}", f"--output={target}",
            ], expect=target)  # fmt: skip
        ctx.progress("writing the rig", 0.95)
        return self._output(outputs, mode, seed, fmt, steps)

    # -- steps ---------------------------------------------------------------------------

    def _stage_input(self, path: Path, work: Path) -> Path:
        """The input under a name and suffix UniRig's importers accept (OBJ/GLB/FBX kept
        as they are; other formats converted to GLB)."""
        from deployments.geometry.errors import MeshFormatError
        from deployments.geometry.mesh_io import export_mesh, load_scene, sniff_mesh_format

        with open(path, "rb") as fh:
            head = fh.read(64 * 1024)
        fmt = sniff_mesh_format(head, path.name, size=path.stat().st_size)
        folder = work / "input"
        folder.mkdir(parents=True, exist_ok=True)
        if fmt in ("obj", "glb", "fbx"):
            target = folder / f"asset.{fmt}"
            shutil.copyfile(path, target)
            return target
        try:
            scene = load_scene(path, fmt)
        except MeshFormatError as exc:
            raise ModelInputError(f"Cannot read the input mesh: {exc}") from exc
        target = folder / "asset.glb"
        target.write_bytes(export_mesh(scene, "glb"))
        return target

    def _extract(self, ctx: JobContext, source: Path, work: Path, steps: list[str]) -> None:
        self._step(ctx, f"extraction of {source.name}", steps, work, [
            "-m", "src.data.extract", f"--config={DATA_CONFIG}",
            f"--require_suffix={SUFFIXES}", "--force_override=true", "--num_runs=1", "--id=0",
            f"--time={time.strftime('%Y_%m_%d_%H_%M_%S')}",
            f"--faces_target_count={self.faces_target_count}", f"--input={source}",
            f"--output_dir={work / 'npz'}",
        ], expect=source.with_suffix("") / "raw_data.npz")  # fmt: skip

    def _task(self, task: str, checkpoint: str, work: Path) -> Path:
        """Upstream's task config with the checkpoint taken from the weights folder."""
        text = (Path(str(self.repo_dir)) / task).read_text()
        line = f"resume_from_checkpoint: {self.weights_path.resolve() / checkpoint}"
        target = work / Path(task).name
        target.write_text(_CHECKPOINT_LINE.sub(line, text, count=1))
        return target

    def _step(
        self,
        ctx: JobContext,
        stage: str,
        steps: list[str],
        work: Path,
        args: list[str],
        expect: Path,
    ) -> None:
        log = work / "unirig.log"
        env = {"PYOPENGL_PLATFORM": "egl", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        run_step(
            ctx, self.model_id, stage, [self.python, *args], self.repo_dir, log, env=env,
            timeout_s=self.step_timeout_s,
        )  # fmt: skip
        steps.append(" ".join(args[:2]) if args[0] == "-m" else args[0])
        if not expect.exists():  # upstream prints and carries on when a stage fails
            raise ModelInputError(
                f"{self.model_id} failed during {stage}: no {expect.name} was written: "
                f"{log_tail(log)}"
            )

    # -- output ------------------------------------------------------------------------------

    def _output(
        self, outputs: dict[str, Path], mode: str, seed: int, fmt: str, steps: list[str]
    ) -> ModelOutput:
        import trimesh

        from deployments.geometry.mesh_io import CONTENT_TYPES

        glb = outputs["glb"].read_bytes()
        files = []
        if fmt == "fbx":
            data = outputs["fbx"].read_bytes()
            files.append(OutputFile("rigged_mesh.fbx", data, CONTENT_TYPES["fbx"], True))
        files.append(OutputFile("rigged_mesh.glb", glb, CONTENT_TYPES["glb"], fmt == "glb"))
        joints = glb_joints(glb)
        max_influences = 0 if mode == "skeleton" else 4
        doc = {"rig_mode": mode, "joints": joints, "max_influences": max_influences}
        files.append(OutputFile("skeleton.json", json.dumps(doc).encode(), CONTENT_TYPES["json"]))
        try:
            preview: Any = trimesh.load(trimesh.util.wrap_as_stream(glb), file_type="glb")
        except Exception:  # the thumbnail is optional; the rig itself was written
            preview = None
        rig_info = {
            "model": self.model_id,
            "rig_mode": mode,
            "rig_mode_meaning": RIG_MODES[mode],
            "num_joints": len(joints),
            "num_bones": sum(1 for j in joints if j["parent"] >= 0),
            "root_joint": next((j["name"] for j in joints if j["parent"] < 0), None),
            "max_influences": max_influences,
            "animation": None,
            "skeleton_source": "UniRig autoregressive skeleton",
            "joints": joints,
        }
        info = self.base_info(
            rig_mode=mode,
            seed=seed,
            stages=steps,
            faces_target_count=self.faces_target_count,
            generation={"num_beams": 15, "top_k": 5, "top_p": 0.95, "temperature": 1.5},
            frame="merged onto the input asset by upstream's merge (input frame and scale)",
            checkpoints=[SKELETON_CKPT] + ([SKIN_CKPT] if mode != "skeleton" else []),
        )
        if mode == "full":
            info["note"] = "UniRig generates no animation; full is the same as skin"
        return ModelOutput(
            files=files, preview=preview, result={"rig_info": rig_info}, generation_info=info
        )


def _gltf_json(glb: bytes) -> dict[str, Any]:
    if len(glb) < 20 or glb[:4] != b"glTF":
        raise ValueError("not a GLB file")
    length, kind = struct.unpack_from("<I4s", glb, 12)
    if kind != b"JSON":
        raise ValueError("GLB has no JSON chunk first")
    doc: dict[str, Any] = json.loads(glb[20 : 20 + length])
    return doc


def _node_matrix(node: dict[str, Any]) -> np.ndarray:
    if "matrix" in node:
        return np.asarray(node["matrix"], dtype=np.float64).reshape(4, 4).T
    m = np.eye(4)
    x, y, z, w = node.get("rotation", [0.0, 0.0, 0.0, 1.0])
    m[:3, :3] = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    m[:3, :3] *= np.asarray(node.get("scale", [1.0, 1.0, 1.0]))[None, :]
    m[:3, 3] = node.get("translation", [0.0, 0.0, 0.0])
    return m


def glb_joints(glb: bytes) -> list[dict[str, Any]]:
    """The joints of the first skin of a GLB: name, parent index (-1 for roots) and world
    position, in skin order. Empty when the file has no skin."""
    try:
        doc = _gltf_json(glb)
    except (ValueError, json.JSONDecodeError):
        return []
    nodes = doc.get("nodes", [])
    skins = doc.get("skins", [])
    if not skins:
        return []
    parent_of: dict[int, int] = {}
    for index, node in enumerate(nodes):
        for child in node.get("children", []):
            parent_of[child] = index
    world: dict[int, np.ndarray] = {}

    def world_of(index: int) -> np.ndarray:
        if index not in world:
            local = _node_matrix(nodes[index])
            parent = parent_of.get(index)
            world[index] = local if parent is None else world_of(parent) @ local
        return world[index]

    order = list(skins[0].get("joints", []))
    slot = {node: i for i, node in enumerate(order)}
    joints = []
    for node in order:
        parent = parent_of.get(node)
        position = world_of(node)[:3, 3]
        joints.append(
            {
                "name": str(nodes[node].get("name", f"joint_{slot[node]}")),
                "parent": slot.get(parent, -1) if parent is not None else -1,
                "position": [round(float(v), 6) for v in position],
            }
        )
    return joints

"""unirig_auto_rig against a stand-in of UniRig's interpreter: it plays upstream's scripts
(`-m src.data.extract`, `run.py --task ...`, `-m src.inference.merge`) with their argument
names, records every call and its working directory, and writes what each step writes
(raw_data.npz, the stage FBX, the merged GLB/FBX)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import trimesh

from deployments.base import (
    JobCancelled,
    JobContext,
    ModelInputError,
    ModelOutOfMemory,
    ModelOutput,
)
from deployments.unirig_auto_rig import SKELETON_CKPT, SKIN_CKPT, UniRigAutoRig, glb_joints

pytestmark = pytest.mark.unit

STANDIN = """
import json, os, shutil, sys, time
here = {here!r}
args = sys.argv[1:]
control = json.load(open(os.path.join(here, "control.json")))
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
step = args[1] if args[0] == "-m" else os.path.basename(args[0])
record = {{"step": step, "opts": opts, "cwd": os.getcwd(),
          "offline": os.environ.get("HF_HUB_OFFLINE")}}
if step == "run.py":
    record["task"] = open(opts["task"]).read()
open(os.path.join(here, "calls.jsonl"), "a").write(json.dumps(record) + "\\n")
if control.get("sleep") == step:
    time.sleep(30)
if control.get("fail") == step:
    print(control.get("message", "boom"))
    sys.exit(1)
if control.get("silent") == step:
    sys.exit(0)  # upstream prints and returns without writing
if step == "src.data.extract":
    out = os.path.splitext(opts["input"])[0]
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "raw_data.npz"), "wb").write(b"npz")
elif step == "run.py":
    open(opts["output"], "wb").write(b"Kaydara FBX Binary  \\x00stage")
elif step == "src.inference.merge":
    if opts["output"].endswith(".glb"):
        shutil.copyfile(control["rigged_glb"], opts["output"])
    else:
        open(opts["output"], "wb").write(b"Kaydara FBX Binary  \\x00merged")
"""


def _setup(tmp_path: Path, assets_dir: Path, **control: Any) -> tuple[UniRigAutoRig, Path]:
    repo = tmp_path / "UniRig"
    (repo / "configs" / "task").mkdir(parents=True)
    (repo / "run.py").write_text("")
    for name, ckpt in [
        ("quick_inference_skeleton_articulationxl_ar_256.yaml", SKELETON_CKPT),
        ("quick_inference_unirig_skin.yaml", SKIN_CKPT),
    ]:
        (repo / "configs" / "task" / name).write_text(
            f"mode: predict\nresume_from_checkpoint: experiments/{ckpt}\ncomponents:\n  data: x\n"
        )
    weights = tmp_path / "weights" / "unirig"
    for ckpt in (SKELETON_CKPT, SKIN_CKPT):
        (weights / ckpt).parent.mkdir(parents=True, exist_ok=True)
        (weights / ckpt).write_bytes(b"ckpt")
    here = tmp_path / "standin"
    here.mkdir()
    control.setdefault("rigged_glb", str(assets_dir / "RiggedSimple.glb"))
    (here / "control.json").write_text(json.dumps(control))
    python = here / "python"
    python.write_text(f"#!{sys.executable}\n" + STANDIN.format(here=str(here)))
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    model = UniRigAutoRig(
        weights_root=str(tmp_path / "weights"), repo_dir=str(repo), python=str(python)
    )
    return model, here


def _calls(here: Path) -> list[dict[str, Any]]:
    path = here / "calls.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _run(model: UniRigAutoRig, tmp_path: Path, mesh: Path, **params: Any) -> ModelOutput:
    work = tmp_path / "job"
    work.mkdir(exist_ok=True)
    stages: list[float] = []
    ctx = JobContext("job_rig", 1, work, on_progress=lambda _s, f: stages.append(f))
    out = model.run(ctx, {"mesh": mesh}, {"output_format": "glb", **params})
    assert stages == sorted(stages)
    return out


def test_availability(tmp_path: Path, assets_dir: Path) -> None:
    model, _ = _setup(tmp_path, assets_dir)
    model._find = lambda name: True  # type: ignore[method-assign]
    assert model.availability() is None
    model.repo_dir = None
    reason = model.availability()
    assert reason is not None and "repo_dir" in reason
    bare = UniRigAutoRig(weights_root=str(tmp_path / "nothing"), repo_dir=str(tmp_path))
    reason = bare.availability()
    assert reason is not None and "unirig_auto_rig" in reason


def test_skeleton_mode_runs_stage_one_and_merge(tmp_path: Path, assets_dir: Path) -> None:
    model, here = _setup(tmp_path, assets_dir)
    out = _run(model, tmp_path, assets_dir / "suzanne.obj", rig_mode="skeleton", seed=99)
    calls = _calls(here)
    assert [c["step"] for c in calls] == ["src.data.extract", "run.py", "src.inference.merge"]
    assert all(c["cwd"] == model.repo_dir and c["offline"] == "1" for c in calls)
    extract, skeleton, merge = calls
    asset = extract["opts"]["input"]
    assert asset.endswith("asset.obj") and extract["opts"]["faces_target_count"] == "50000"
    assert extract["opts"]["config"] == "configs/data/quick_inference.yaml"
    assert skeleton["opts"]["seed"] == "99" and skeleton["opts"]["output"].endswith("skeleton.fbx")
    weights = (tmp_path / "weights" / "unirig" / SKELETON_CKPT).resolve()
    assert f"resume_from_checkpoint: {weights}" in skeleton["task"]
    assert skeleton["opts"]["task"].endswith("quick_inference_skeleton_articulationxl_ar_256.yaml")
    assert merge["opts"]["source"] == skeleton["opts"]["output"]
    assert merge["opts"]["target"] == asset and merge["opts"]["output"].endswith(".glb")
    glb = next(f for f in out.files if f.filename == "rigged_mesh.glb")
    assert glb.primary and glb.data == (assets_dir / "RiggedSimple.glb").read_bytes()
    rig = out.result["rig_info"]
    assert rig["rig_mode"] == "skeleton" and rig["num_joints"] == len(glb_joints(glb.data)) > 0
    assert rig["max_influences"] == 0
    doc = json.loads(next(f.data for f in out.files if f.filename == "skeleton.json"))
    assert doc["joints"] == rig["joints"]
    assert out.generation_info["seed"] == 99 and out.generation_info["rig_mode"] == "skeleton"
    assert isinstance(out.preview, trimesh.Scene)


@pytest.mark.parametrize("mode", ["skin", "full"])
def test_skin_modes_run_both_stages_and_fbx(tmp_path: Path, assets_dir: Path, mode: str) -> None:
    model, here = _setup(tmp_path, assets_dir)
    out = _run(model, tmp_path, assets_dir / "BoxTextured.glb", rig_mode=mode,
               output_format="fbx")  # fmt: skip
    steps = [c["step"] for c in _calls(here)]
    assert steps == ["src.data.extract", "run.py", "src.data.extract", "run.py",
                     "src.inference.merge", "src.inference.merge"]  # fmt: skip
    calls = _calls(here)
    skin = calls[3]
    assert skin["opts"]["input"] == calls[1]["opts"]["output"]  # the skeleton FBX
    assert skin["opts"]["data_name"] == "raw_data.npz"
    weights = (tmp_path / "weights" / "unirig" / SKIN_CKPT).resolve()
    assert f"resume_from_checkpoint: {weights}" in skin["task"]
    assert calls[4]["opts"]["source"] == skin["opts"]["output"]
    assert calls[4]["opts"]["target"].endswith("asset.glb")
    assert {calls[4]["opts"]["output"][-4:], calls[5]["opts"]["output"][-4:]} == {".glb", ".fbx"}
    names = [f.filename for f in out.files]
    assert names == ["rigged_mesh.fbx", "rigged_mesh.glb", "skeleton.json"]
    assert out.files[0].primary and out.files[0].data.startswith(b"Kaydara FBX Binary")
    assert out.result["rig_info"]["max_influences"] == 4
    if mode == "full":
        assert "no animation" in out.generation_info["note"]


def test_other_formats_are_converted(tmp_path: Path, assets_dir: Path) -> None:
    model, here = _setup(tmp_path, assets_dir)
    mesh = trimesh.load(assets_dir / "suzanne.obj", force="mesh")
    stl = tmp_path / "in.stl"
    mesh.export(stl)
    _run(model, tmp_path, stl)
    assert _calls(here)[0]["opts"]["input"].endswith("asset.glb")


def test_step_failures(tmp_path: Path, assets_dir: Path) -> None:
    model, here = _setup(tmp_path, assets_dir, fail="run.py", message="shape mismatch in AR")
    with pytest.raises(ModelInputError, match="skeleton prediction.*shape mismatch in AR"):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
    (here / "control.json").write_text(
        json.dumps({"fail": "run.py", "message": "torch.OutOfMemoryError: CUDA out of memory"})
    )
    with pytest.raises(ModelOutOfMemory):
        _run(model, tmp_path, assets_dir / "suzanne.obj")
    (here / "control.json").write_text(json.dumps({"silent": "src.inference.merge"}))
    with pytest.raises(ModelInputError, match="no rigged_mesh.glb was written"):
        _run(model, tmp_path, assets_dir / "suzanne.obj")


def test_bad_rig_mode(tmp_path: Path, assets_dir: Path) -> None:
    model, _ = _setup(tmp_path, assets_dir)
    with pytest.raises(ModelInputError, match="rig_mode"):
        _run(model, tmp_path, assets_dir / "suzanne.obj", rig_mode="dance")


def test_cancel_kills_the_step(tmp_path: Path, assets_dir: Path) -> None:
    model, _ = _setup(tmp_path, assets_dir, sleep="run.py")
    work = tmp_path / "job"
    work.mkdir()
    ctx = JobContext("job_rig", 1, work)

    def cancel_on_skeleton(stage: str, _fraction: float) -> None:
        if stage == "predicting the skeleton":
            ctx.cancelled.set()

    ctx._on_progress = cancel_on_skeleton
    with pytest.raises(JobCancelled):
        model.run(ctx, {"mesh": assets_dir / "suzanne.obj"}, {"output_format": "glb"})

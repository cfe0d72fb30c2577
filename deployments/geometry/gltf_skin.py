"""Write a skinned GLB with pygltflib: joints, inverse bind matrices, JOINTS_0/WEIGHTS_0.

trimesh drops skins, joints, weights and animations on export, so rigged output is
written here directly. Layout: node 0 is the skinned mesh (a root node, as the glTF
spec recommends), the joint hierarchy hangs from its own root node; joints carry only
translations in the bind pose, so each inverse bind matrix is a pure translation. A base
colour texture with its UVs is kept when the input had one. An optional test animation
swings every joint that has children about an axis across its first bone.

Weights are written as float32 with the largest of each vertex adjusted so that the
float32 sum is 1 (the Khronos validator checks normalisation at float32 precision).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pygltflib as gl

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
ANIMATION_SECONDS = 2.0
ANIMATION_FPS = 15
SWING_DEGREES = 25.0


@dataclass
class SkinnedMesh:
    vertices: np.ndarray  # (n, 3)
    faces: np.ndarray  # (m, 3)
    normals: np.ndarray  # (n, 3)
    weights: np.ndarray  # (n, J) rows sum to 1, at most 4 non-zero
    joints: np.ndarray  # (J, 3) bind-pose positions, world space
    parents: np.ndarray  # (J,) -1 for the root
    names: list[str]
    uvs: np.ndarray | None = None  # (n, 2), glTF convention (v down)
    texture_png: bytes | None = None
    color: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 1.0)


class _Blob:
    """One binary buffer with 4-byte aligned views, and the accessors that read them."""

    def __init__(self, doc: gl.GLTF2) -> None:
        self.doc = doc
        self.data = bytearray()

    def view(self, raw: bytes, target: int | None = None) -> int:
        self.data.extend(b"\0" * (-len(self.data) % 4))
        self.doc.bufferViews.append(
            gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target)
        )
        self.data.extend(raw)
        return len(self.doc.bufferViews) - 1

    def accessor(
        self, array: np.ndarray, kind: str, target: int | None = None, bounds: bool = False
    ) -> int:
        components = {
            np.dtype(np.float32): gl.FLOAT,
            np.dtype(np.uint8): gl.UNSIGNED_BYTE,
            np.dtype(np.uint16): gl.UNSIGNED_SHORT,
            np.dtype(np.uint32): gl.UNSIGNED_INT,
        }
        array = np.ascontiguousarray(array)
        view = self.view(array.tobytes(), target)
        flat = array.reshape(len(array), -1)
        self.doc.accessors.append(
            gl.Accessor(
                bufferView=view,
                componentType=components[array.dtype],
                count=len(array),
                type=kind,
                min=flat.min(axis=0).tolist() if bounds else None,
                max=flat.max(axis=0).tolist() if bounds else None,
            )
        )
        return len(self.doc.accessors) - 1


def float32_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) joint indices and float32 weights whose float32 sum is 1 for every row."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :4]
    values = np.take_along_axis(weights, order, axis=1)
    values = values / values.sum(axis=1, keepdims=True)
    out = values.astype(np.float32)
    out[:, 0] = np.float32(1.0) - (out[:, 1] + out[:, 2] + out[:, 3])
    index = np.where(out > 0, order, 0)
    return index, np.where(out > 0, out, np.float32(0.0))


def _axis_angle_quaternions(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(k, 4) xyzw unit quaternions for rotations by `angles` about unit `axis`."""
    half = angles / 2.0
    quats = np.column_stack([np.outer(np.sin(half), axis), np.cos(half)])
    return (quats / np.linalg.norm(quats, axis=1, keepdims=True)).astype(np.float32)


def _add_animation(doc: gl.GLTF2, blob: _Blob, skin: SkinnedMesh, first_joint: int) -> None:
    times = np.arange(int(ANIMATION_SECONDS * ANIMATION_FPS) + 1, dtype=np.float32)
    times /= ANIMATION_FPS
    input_accessor = blob.accessor(times, "SCALAR", bounds=True)
    angles = np.radians(SWING_DEGREES) * np.sin(2 * np.pi * times / ANIMATION_SECONDS)
    animation = gl.Animation(name="test_swing", channels=[], samplers=[])
    for joint in range(len(skin.joints)):
        children = np.flatnonzero(skin.parents == joint)
        if skin.parents[joint] < 0 or len(children) == 0:
            continue
        bone = skin.joints[children[0]] - skin.joints[joint]
        side = np.cross(bone, [0.0, 0.0, 1.0])
        if float(np.linalg.norm(side)) < 1e-9 * max(float(np.linalg.norm(bone)), 1e-30):
            side = np.cross(bone, [1.0, 0.0, 0.0])
        side /= np.linalg.norm(side)
        sign = 1.0 if joint % 2 else -1.0
        output = blob.accessor(_axis_angle_quaternions(side, sign * angles), "VEC4")
        animation.samplers.append(
            gl.AnimationSampler(input=input_accessor, output=output, interpolation="LINEAR")
        )
        animation.channels.append(
            gl.AnimationChannel(
                sampler=len(animation.samplers) - 1,
                target=gl.AnimationChannelTarget(node=first_joint + joint, path="rotation"),
            )
        )
    if animation.channels:
        doc.animations.append(animation)


def _add_material(doc: gl.GLTF2, blob: _Blob, skin: SkinnedMesh) -> int:
    pbr = gl.PbrMetallicRoughness(
        baseColorFactor=list(skin.color), metallicFactor=0.0, roughnessFactor=0.8
    )
    if skin.texture_png is not None and skin.uvs is not None:
        view = blob.view(skin.texture_png)
        doc.images.append(gl.Image(bufferView=view, mimeType="image/png"))
        doc.samplers.append(gl.Sampler(magFilter=gl.LINEAR, minFilter=gl.LINEAR_MIPMAP_LINEAR))
        doc.textures.append(gl.Texture(source=0, sampler=0))
        pbr.baseColorFactor = [1.0, 1.0, 1.0, 1.0]
        pbr.baseColorTexture = gl.TextureInfo(index=0)
    doc.materials.append(gl.Material(pbrMetallicRoughness=pbr, doubleSided=True, name="skin"))
    return 0


def skinned_glb(skin: SkinnedMesh, animate: bool = False) -> bytes:
    """The GLB bytes of a mesh bound to a joint tree (see the module docstring)."""
    doc = gl.GLTF2(asset=gl.Asset(generator="MeshForge heat_auto_rig", version="2.0"))
    doc.scene = 0
    blob = _Blob(doc)
    joint_index, joint_weight = float32_weights(skin.weights)
    index_type = np.uint8 if len(skin.joints) <= 256 else np.uint16
    attributes = gl.Attributes(
        POSITION=blob.accessor(skin.vertices.astype(np.float32), "VEC3", ARRAY_BUFFER, True),
        NORMAL=blob.accessor(skin.normals.astype(np.float32), "VEC3", ARRAY_BUFFER),
        JOINTS_0=blob.accessor(joint_index.astype(index_type), "VEC4", ARRAY_BUFFER),
        WEIGHTS_0=blob.accessor(joint_weight, "VEC4", ARRAY_BUFFER),
    )
    if skin.uvs is not None:
        attributes.TEXCOORD_0 = blob.accessor(skin.uvs.astype(np.float32), "VEC2", ARRAY_BUFFER)
    indices = blob.accessor(
        skin.faces.astype(np.uint32).reshape(-1), "SCALAR", ELEMENT_ARRAY_BUFFER
    )
    material = _add_material(doc, blob, skin)
    doc.meshes.append(
        gl.Mesh(
            name="mesh",
            primitives=[gl.Primitive(attributes=attributes, indices=indices, material=material)],
        )
    )
    first = 1
    doc.nodes.append(gl.Node(name="mesh", mesh=0, skin=0))
    for j, (position, parent) in enumerate(zip(skin.joints, skin.parents, strict=True)):
        local = position - (skin.joints[parent] if parent >= 0 else 0.0)
        children = [first + int(c) for c in np.flatnonzero(skin.parents == j)]
        doc.nodes.append(
            gl.Node(
                name=skin.names[j],
                translation=[float(x) for x in local],
                children=children or None,
            )
        )
    inverse_bind = np.tile(np.eye(4, dtype=np.float32), (len(skin.joints), 1, 1))
    inverse_bind[:, 3, :3] = -skin.joints  # column-major: translation in the last column
    ibm = blob.accessor(inverse_bind.reshape(-1, 16), "MAT4")
    roots = [first + int(j) for j in np.flatnonzero(skin.parents < 0)]
    doc.skins.append(
        gl.Skin(
            name="rig",
            inverseBindMatrices=ibm,
            joints=list(range(first, first + len(skin.joints))),
            skeleton=roots[0],
        )
    )
    doc.scenes.append(gl.Scene(nodes=[0, *roots]))
    if animate:
        _add_animation(doc, blob, skin, first)
    blob.data.extend(b"\0" * (-len(blob.data) % 4))
    doc.buffers.append(gl.Buffer(byteLength=len(blob.data)))
    doc.set_binary_blob(bytes(blob.data))
    out = io.BytesIO()
    for chunk in doc.save_to_bytes():
        out.write(chunk)
    return out.getvalue()

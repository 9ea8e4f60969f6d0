"""Structural variants: HalfCheetah's generated big/small legs, and every robot's limbs scaled with MjSpec.

The XML files in ``assets/`` are generated from Gymnasium's ``half_cheetah.xml`` by
``scripts/generate_morphology_assets.py``, which calls :func:`write_assets`; a test checks that the
committed files equal :func:`generate`'s output. What a variant changes, for a scale ``f``:

- the six leg segments (``bthigh``, ``bshin``, ``bfoot``, ``fthigh``, ``fshin``, ``ffoot``): capsule
  radius and half-length × ``f``, geom positions in their body × ``f``, joint anchors × ``f``, and the
  position of each child body × ``f`` (so segments stay attached). Torso and head keep their shape,
  and the hips stay where they are on the torso;
- the torso's initial height moves so that the lowest foot keeps the nominal clearance above the
  floor at the initial pose (big legs would otherwise start inside the ground);
- total mass stays 14 kg (the nominal model's ``settotalmass``): the geoms' common density is set to
  ``14 / total volume``, so shape and mass remain separate knobs and the file compiles with no
  deprecated attribute.

Numbers are edited in the XML text with exact decimal arithmetic (``0.145 × 1.25`` is written
``0.18125``); computed values (density, torso height) are written with full float precision.
MuJoCo's ``MjSpec.to_xml`` was not used to write the files: it rounds every number to 6 significant
digits (orientations given as ``axisangle`` come back as rounded quaternions), so the written model
would differ from the edited one. MuJoCo itself measures the volume and the foot clearance.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from importlib.resources import files
from pathlib import Path

import mujoco
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import expand_model_path

SCALES = {"big": Decimal("1.25"), "small": Decimal("0.75")}
"""Leg scale of each HalfCheetah morphology besides ``"default"``."""

LEG_BODIES = ("bthigh", "bshin", "bfoot", "fthigh", "fshin", "ffoot")
TOTAL_MASS = 14.0
SOURCE = "half_cheetah.xml"


def asset_path(morphology: str) -> Path:
    """The installed XML file of a HalfCheetah morphology (``"big"`` or ``"small"``)."""
    return Path(str(files("dynshift_envs.assets") / f"half_cheetah_{morphology}.xml"))


def _scale_attribute(element: ET.Element, attribute: str, scale: Decimal) -> None:
    text = element.get(attribute)
    if text is not None:
        element.set(attribute, " ".join(_decimal_text(Decimal(x) * scale) for x in text.split()))


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _lowest_leg_point(model: mujoco.MjModel) -> float:
    """Lowest z of any leg capsule at the initial pose."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    lowest = np.inf
    for body in LEG_BODIES:
        for geom in np.flatnonzero(model.geom_bodyid == model.body(body).id):
            radius, half_length = model.geom_size[geom, :2]
            axis_z = data.geom_xmat[geom].reshape(3, 3)[2, 2]
            lowest = min(lowest, data.geom_xpos[geom, 2] - half_length * abs(axis_z) - radius)
    return float(lowest)


def _compile(root: ET.Element) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))


def generate(morphology: str) -> str:
    """The XML text of a HalfCheetah morphology, derived from Gymnasium's ``half_cheetah.xml``."""
    if morphology not in SCALES:
        raise ValueError(f"unknown HalfCheetah morphology {morphology!r}; generated ones: {', '.join(SCALES)}")
    scale = SCALES[morphology]
    source = expand_model_path(SOURCE)
    root = ET.parse(source).getroot()
    root.find("compiler").attrib.pop("settotalmass")
    bodies = {body.get("name"): body for body in root.iter("body")}
    nominal_clearance = _lowest_leg_point(_compile(root))

    for name in LEG_BODIES:
        body = bodies[name]
        for geom in body.findall("geom"):
            _scale_attribute(geom, "size", scale)
            _scale_attribute(geom, "pos", scale)
        for joint in body.findall("joint"):
            _scale_attribute(joint, "pos", scale)
        for child in body.findall("body"):
            _scale_attribute(child, "pos", scale)

    geom_default = root.find("default/geom")
    geom_default.set("density", "1")
    volume = float(_compile(root).body_mass.sum())
    geom_default.set("density", repr(TOTAL_MASS / volume))

    torso = bodies["torso"]
    x, y, z = (float(v) for v in torso.get("pos").split())
    z += nominal_clearance - _lowest_leg_point(_compile(root))
    torso.set("pos", f"{x:g} {y:g} {z!r}")

    root.insert(
        0,
        ET.Comment(
            f" HalfCheetah, morphology {morphology!r}: legs x{scale}, total mass {TOTAL_MASS:g} kg. Generated from "
            f"Gymnasium's {SOURCE} by scripts/generate_morphology_assets.py; do not edit by hand. "
        ),
    )
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def write_assets(directory: Path) -> list[Path]:
    """Write every generated morphology file into ``directory``; returns the paths written."""
    written = []
    for morphology in SCALES:
        path = Path(directory) / f"half_cheetah_{morphology}.xml"
        tmp = path.with_suffix(".xml.tmp")
        tmp.write_text(generate(morphology))
        tmp.replace(path)
        written.append(path)
    return written


# ---- every robot: limbs scaled with MjSpec at construction ----------------------------------------

LIMB_SCALES = {name: float(scale) for name, scale in SCALES.items()}
"""Limb scale of ``morphology="big"`` / ``"small"`` on the robots built at construction (Hopper,
Walker2d, Ant): HalfCheetah's generated files' factors."""


def limb_bodies(spec: mujoco.MjSpec, roots: tuple[str, ...]) -> list[mujoco.MjsBody]:
    """The bodies of the subtrees under ``roots`` (the roots included), named or not: a robot's limbs."""
    found, stack = [], [spec.body(name) for name in roots]
    while stack:
        body = stack.pop()
        found.append(body)
        stack.extend(body.bodies)
    return found


def _anchor(body: mujoco.MjsBody) -> np.ndarray:
    """Where a body hangs from its parent, in its own frame: its first hinge joint's position (the
    root's hinge for a root that also slides), else its origin."""
    for joint in body.joints:
        if joint.type == mujoco.mjtJoint.mjJNT_HINGE:  # MjSpec gives enum members here
            return np.array(joint.pos, dtype=float)
    return np.zeros(3)


def scale_body(body: mujoco.MjsBody, k: float) -> None:
    """Scale one body's shape by ``k`` about its anchor (:func:`_anchor`, which stays where it is):
    every geom's sizes (radii, half-lengths), its geoms' positions and ``fromto`` ends, its joints'
    positions, and the positions of its sites, cameras and child bodies, so that children stay
    attached at the scaled ends."""
    anchor = _anchor(body)

    def moved(point) -> np.ndarray:
        return anchor + k * (np.asarray(point, dtype=float) - anchor)

    for geom in body.geoms:
        geom.size = np.asarray(geom.size) * k
        if np.isnan(geom.fromto[0]):
            geom.pos = moved(geom.pos)
        else:
            geom.fromto = np.concatenate([moved(geom.fromto[:3]), moved(geom.fromto[3:])])
    for element in (*body.joints, *body.sites, *body.cameras, *body.bodies):
        element.pos = moved(element.pos)


def _lowest_point(model: mujoco.MjModel) -> float:
    """Lowest z of the robot's geoms (every geom not in the world body) at ``qpos0``."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    lowest = np.inf
    for geom in np.flatnonzero(model.geom_bodyid > 0):
        z, size = data.geom_xpos[geom, 2], model.geom_size[geom]
        kind = int(model.geom_type[geom])
        if kind in (mujoco.mjtGeom.mjGEOM_CAPSULE.value, mujoco.mjtGeom.mjGEOM_CYLINDER.value):
            z -= size[1] * abs(data.geom_xmat[geom].reshape(3, 3)[2, 2]) + size[0]
        elif kind == mujoco.mjtGeom.mjGEOM_SPHERE.value:
            z -= size[0]
        else:
            z -= model.geom_rbound[geom]
        lowest = min(lowest, z)
    return float(lowest)


def build(spec: mujoco.MjSpec, scales: list[tuple[mujoco.MjsBody, float]], compile_model) -> tuple[mujoco.MjModel, float]:
    """Compile ``spec`` with each ``(body, k)`` scaled (:func:`scale_body`) and the root body raised
    or lowered so that the robot's lowest point keeps its nominal height above the floor at ``qpos0``
    (a root slide joint whose ``ref`` is the root's height, as Hopper's and Walker2d's ``rootz``,
    moves with it, so that ``qpos`` still reads the height). ``compile_model`` compiles a spec as the
    environment does. Returns the model and the nominal total mass, which the caller restores
    (:func:`dynshift_envs.model.load_model`: ``mj_setTotalmass``, every mass and inertia × one factor)."""
    nominal = compile_model(spec.copy())
    for body, k in scales:
        scale_body(body, k)
    shaped = compile_model(spec.copy())
    rise = _lowest_point(nominal) - _lowest_point(shaped)
    root = spec.body(mujoco.mj_id2name(nominal, mujoco.mjtObj.mjOBJ_BODY, int(np.flatnonzero(nominal.body_parentid == 0)[1])))
    height = float(root.pos[2])
    root.pos = np.asarray(root.pos) + [0.0, 0.0, rise]
    for joint in root.joints:
        if joint.type == mujoco.mjtJoint.mjJNT_SLIDE and np.allclose(joint.axis, [0, 0, 1]) and joint.ref == height:
            joint.ref = height + rise
    return compile_model(spec), float(nominal.body_mass.sum())

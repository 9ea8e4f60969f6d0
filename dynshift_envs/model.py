"""MuJoCo models: loading them warning-free, and writing a :class:`Dynamics` into their arrays.

Scalar shifts are code on model arrays, edited by name and always computed from the nominal arrays
saved when the model was loaded, so applying dynamics twice (or resetting a thousand times) never
compounds. Structural changes (morphology) are separate XML files; see :mod:`dynshift_envs.morphology`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from dynshift_envs.contacts import make_contacts_explicit
from dynshift_envs.dynamics import Dynamics, Multiplier, Uniform
from dynshift_envs.morphology import build

_RANGED = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
"""Joint types whose range is an interval (a ball joint's range is one angle, a free joint has none)."""

CRIPPLED_RGBA = np.array([0.9, 0.1, 0.1, 1.0])
"""Colour of the geoms of a crippled leg in renders (visual only)."""


def load_model(path: str, explicit_contacts: Sequence[str] = (), robot: str = "this robot",
               shape: Callable[[mujoco.MjSpec], list] | None = None) -> mujoco.MjModel:
    """Compile an MJCF file, bit-identical to ``mujoco.MjModel.from_xml_path(path)``.

    The one difference: MuJoCo 4 deprecates ``<compiler settotalmass>`` (used by Gymnasium's
    ``half_cheetah.xml``) and prints a warning on every compile. Such a file is compiled without the
    attribute, then rescaled with ``mj_setTotalmass`` and ``mj_setConst``, which gives the same model
    arrays bit for bit (checked in the tests) and prints nothing; other warnings are left alone.

    ``explicit_contacts`` names geoms whose contacts become explicit pairs
    (:func:`dynshift_envs.contacts.make_contacts_explicit`), so that a per-geom friction shift scales
    exactly their contacts; unknown names raise ``ValueError`` naming the valid ones. ``shape`` gives
    the ``(body, k)`` pairs of a morphology built at construction
    (:func:`dynshift_envs.morphology.build`: limbs scaled, total mass and foot clearance kept).
    """
    spec = mujoco.MjSpec.from_file(path)
    if explicit_contacts:
        nominal = _compile(mujoco.MjSpec.from_file(path))
        valid = _names(nominal, mujoco.mjtObj.mjOBJ_GEOM, nominal.ngeom)
        unknown = [name for name in explicit_contacts if name not in valid]
        if unknown:
            raise ValueError(f"friction: unknown {robot} name(s) {unknown}; valid names: {', '.join(valid)}")
        make_contacts_explicit(spec, nominal, explicit_contacts)
    if shape is None:
        return _compile(spec)
    model, total_mass = build(spec, shape(spec), _compile)
    mujoco.mj_setTotalmass(model, total_mass)  # the nominal total: shape and mass stay separate knobs
    set_constants(model, mujoco.MjData(model))
    return model


def _compile(spec: mujoco.MjSpec) -> mujoco.MjModel:
    total_mass = spec.compiler.settotalmass
    if total_mass <= 0:
        return spec.compile()
    spec.compiler.settotalmass = -1
    model = spec.compile()
    mujoco.mj_setTotalmass(model, total_mass)
    set_constants(model, mujoco.MjData(model))
    return model


def set_constants(model: mujoco.MjModel, scratch: mujoco.MjData) -> None:
    """Recompute every constant derived from masses, inertias, damping and gears, as compiling would.

    ``mj_setConst`` recomputes subtree masses, inverse weights, actuator and tendon constants, but not
    the statistics the compiler infers: ``stat.meanmass`` (mean body mass) and ``stat.meaninertia``
    (mean diagonal of the joint-space inertia at ``qpos0``), and the constraint solver scales its
    tolerance by ``meaninertia``. Both are recomputed here the way MuJoCo's compiler does (summed in
    order, then divided), so a nominal model comes out bit for bit as compiled. ``scratch`` is work
    memory; the live ``MjData`` of an environment is never touched.
    """
    mujoco.mj_setConst(model, scratch)
    mujoco.mj_resetData(model, scratch)
    mujoco.mj_forward(model, scratch)
    inertia = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, scratch, inertia)
    model.stat.meaninertia = _sequential_sum(np.diag(inertia)) / model.nv
    model.stat.meanmass = _sequential_sum(model.body_mass[1:]) / (model.nbody - 1)


def _sequential_sum(values: np.ndarray) -> float:
    total = 0.0
    for value in values.tolist():  # left to right, as the C code sums (numpy sums pairwise)
        total += value
    return total


@dataclass(frozen=True)
class Leg:
    """A leg that can be crippled: its body in the XML and the joints its actuators drive."""

    body: str
    joints: tuple[str, ...]


def _names(model: mujoco.MjModel, obj: mujoco.mjtObj, count: int, start: int = 0) -> list[str]:
    """Names of objects ``start .. count-1`` of a kind; unnamed ones (Ant's ankles) cannot be addressed."""
    names = (mujoco.mj_id2name(model, obj, i) for i in range(start, count))
    return [name for name in names if name]


class ModelEditor:
    """Applies :class:`Dynamics` values to one MuJoCo model, in place.

    - *mass* multiplies ``body_mass`` (and ``body_inertia`` when ``scale_inertia``), then
      :func:`set_constants` recomputes the derived constants (``mj_setConst`` plus the compiler's
      mass statistics) on a scratch ``MjData``, so the live simulation state is not disturbed;
    - *damping* multiplies ``dof_damping`` (every degree of freedom of a named joint);
    - *friction* multiplies the rows of ``geom_friction`` (sliding, torsional and rolling together)
      and the friction of the model's explicit contact pairs: a number scales every pair by itself, a
      map scales the pair of geoms ``g`` and ``p`` by ``k_g · k_p`` (see :mod:`dynshift_envs.contacts`);
    - *gravity* multiplies ``opt.gravity``;
    - *joint range* scales each limited hinge or slide joint's ``jnt_range`` about its centre;
    - *crippled legs* zero the ``actuator_gear`` of the actuators driving the leg's joints, found by
      joint name (actuator order is not leg order), and colour the leg's geoms red.

    :param model: the model to edit; its current arrays are taken as nominal.
    :param legs: the crippleable legs of this robot, in leg-number order.
    :param robot: the robot's name, for error messages.
    :param morphology: the morphology the model was built with (recorded in :attr:`applied`).
    """

    def __init__(
        self, model: mujoco.MjModel, legs: Sequence[Leg] = (), robot: str = "this robot", morphology: str = "default"
    ):
        self.model = model
        self.robot = robot
        self.body_names = _names(model, mujoco.mjtObj.mjOBJ_BODY, model.nbody, start=1)  # not the world
        self.joint_names = _names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt)
        self.geom_names = _names(model, mujoco.mjtObj.mjOBJ_GEOM, model.ngeom)
        self._ranged = model.jnt_limited.astype(bool) & np.isin(model.jnt_type, _RANGED)
        self.limited_joint_names = tuple(name for name in self.joint_names if self._ranged[model.joint(name).id])
        """Joints a ``joint_range`` shift may name: limited hinges and slides."""
        self.legs = tuple(legs)
        self._nominal_mass = model.body_mass.copy()
        self._nominal_inertia = model.body_inertia.copy()
        self._nominal_damping = model.dof_damping.copy()
        self._nominal_friction = model.geom_friction.copy()
        self._nominal_pair_friction = model.pair_friction.copy()
        self._nominal_gravity = model.opt.gravity.copy()
        self._nominal_range = model.jnt_range.copy()
        self._range_centre = self._nominal_range.mean(axis=1)
        self._range_half = (self._nominal_range[:, 1] - self._nominal_range[:, 0]) / 2
        self._nominal_gear = model.actuator_gear.copy()
        self._nominal_rgba = model.geom_rgba.copy()
        self._leg_actuators = [self._actuators_of(leg) for leg in self.legs]
        self._leg_geoms = [self._geoms_of(leg) for leg in self.legs]
        self._scratch = mujoco.MjData(model)
        self.applied = Dynamics(morphology=morphology)
        """The dynamics the model arrays currently hold (the nominal model at construction)."""

    # ---- names -------------------------------------------------------------------------------

    def _actuators_of(self, leg: Leg) -> np.ndarray:
        joint_ids = [self.model.joint(name).id for name in leg.joints]
        on_joint = self.model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT
        actuators = np.flatnonzero(on_joint & np.isin(self.model.actuator_trnid[:, 0], joint_ids))
        if len(actuators) != len(leg.joints):
            raise RuntimeError(f"leg {leg.body!r}: expected one actuator per joint {leg.joints}")
        return actuators

    def _geoms_of(self, leg: Leg) -> np.ndarray:
        root = self.model.body(leg.body).id
        in_leg = np.zeros(self.model.nbody, dtype=bool)
        for body in range(self.model.nbody):  # parents come before children in MuJoCo's body order
            in_leg[body] = body == root or (body > 0 and in_leg[self.model.body_parentid[body]])
        return np.flatnonzero(in_leg[self.model.geom_bodyid])

    @property
    def leg_names(self) -> tuple[str, ...]:
        return tuple(leg.body for leg in self.legs)

    def _check_names(self, what: str, value: Multiplier, valid: Sequence[str]) -> None:
        if isinstance(value, Mapping):
            unknown = [name for name in value if name not in valid]
            if unknown:
                raise ValueError(
                    f"{what}: unknown {self.robot} name(s) {unknown}; valid names: {', '.join(valid)}"
                )

    def _leg_number(self, leg: int | str) -> int:
        if not self.legs:
            raise ValueError(f"crippled_legs: {self.robot} has no legs to cripple (only Ant has)")
        if isinstance(leg, str):
            if leg not in self.leg_names:
                raise ValueError(
                    f"crippled_legs: unknown leg {leg!r}; valid: 0-{len(self.legs) - 1} or "
                    f"{', '.join(self.leg_names)}"
                )
            return self.leg_names.index(leg)
        if not 0 <= leg < len(self.legs):
            raise ValueError(
                f"crippled_legs: leg {leg} out of range; valid: 0-{len(self.legs) - 1} or {', '.join(self.leg_names)}"
            )
        return leg

    def normalise(self, dynamics: Dynamics) -> Dynamics:
        """Check body, joint and leg names against the model; legs become sorted unique numbers."""
        self._check_names("mass", dynamics.mass, self.body_names)
        self._check_names("damping", dynamics.damping, self.joint_names)
        self._check_names("friction", dynamics.friction, self.geom_names)
        if isinstance(dynamics.joint_range, Mapping):
            wrong = [name for name in dynamics.joint_range if name not in self.limited_joint_names]
            if wrong:
                what = ["unlimited" if name in self.joint_names else "unknown" for name in wrong]
                raise ValueError(
                    f"joint_range: {', '.join(f'{w} joint {n!r}' for w, n in zip(what, wrong))} of {self.robot}; "
                    f"the limited joints are: {', '.join(self.limited_joint_names)}")
        legs = tuple(sorted({self._leg_number(leg) for leg in dynamics.crippled_legs}))
        return dynamics if legs == dynamics.crippled_legs else dynamics.replace(crippled_legs=legs)

    # ---- multipliers as arrays -----------------------------------------------------------------

    def _multipliers(self, value: Multiplier, count: int, index, everywhere: np.ndarray | None = None) -> np.ndarray:
        """One multiplier per element, for concrete (sampled) values: a number on every element (or on
        those ``everywhere`` marks), a map on the elements ``index(name)`` selects, 1 elsewhere."""
        if isinstance(value, Mapping):
            out = np.ones(count)
            for name, item in value.items():
                out[index(name)] = _concrete(item)
            return out
        return np.full(count, _concrete(value)) if everywhere is None else np.where(everywhere, _concrete(value), 1.0)

    def body_multipliers(self, mass: Multiplier) -> np.ndarray:
        """One mass multiplier per body (world included)."""
        return self._multipliers(mass, self.model.nbody, lambda name: self.model.body(name).id)

    def dof_multipliers(self, damping: Multiplier) -> np.ndarray:
        """One damping multiplier per degree of freedom (every dof of a named joint)."""
        return self._multipliers(damping, self.model.nv, lambda name: self.model.dof_jntid == self.model.joint(name).id)

    def geom_multipliers(self, friction: Multiplier) -> np.ndarray:
        """One friction multiplier per geom."""
        return self._multipliers(friction, self.model.ngeom, lambda name: self.model.geom(name).id)

    def joint_range_multipliers(self, joint_range: Multiplier) -> np.ndarray:
        """One range multiplier per joint (a number reaches the limited hinges and slides only)."""
        return self._multipliers(joint_range, self.model.njnt, lambda name: self.model.joint(name).id, self._ranged)

    # ---- writing -------------------------------------------------------------------------------

    def apply(self, dynamics: Dynamics) -> None:
        """Write concrete, normalised ``dynamics`` into the model, from the nominal arrays.

        Does nothing when the model already holds these dynamics. Morphology is not handled here: it
        is the model itself.
        """
        if dynamics == self.applied:
            return
        model = self.model
        mass = self.body_multipliers(dynamics.mass)
        np.multiply(self._nominal_mass, mass, out=model.body_mass)
        inertia_scale = mass[:, None] if dynamics.scale_inertia else 1.0
        np.multiply(self._nominal_inertia, inertia_scale, out=model.body_inertia)
        np.multiply(self._nominal_damping, self.dof_multipliers(dynamics.damping), out=model.dof_damping)
        geom_friction = self.geom_multipliers(dynamics.friction)
        np.multiply(self._nominal_friction, geom_friction[:, None], out=model.geom_friction)
        if model.npair:
            if isinstance(dynamics.friction, Mapping):
                pair_friction = geom_friction[model.pair_geom1] * geom_friction[model.pair_geom2]
            else:
                pair_friction = np.full(model.npair, _concrete(dynamics.friction))
            np.multiply(self._nominal_pair_friction, pair_friction[:, None], out=model.pair_friction)
        np.multiply(self._nominal_gravity, _concrete(dynamics.gravity), out=model.opt.gravity)
        range_scale = self.joint_range_multipliers(dynamics.joint_range)
        half = self._range_half * range_scale
        scaled = np.stack([self._range_centre - half, self._range_centre + half], axis=1)
        shifted = self._ranged & (range_scale != 1.0)  # the others exactly as compiled
        model.jnt_range[:] = np.where(shifted[:, None], scaled, self._nominal_range)
        model.actuator_gear[:] = self._nominal_gear
        model.geom_rgba[:] = self._nominal_rgba
        for leg in dynamics.crippled_legs:
            model.actuator_gear[self._leg_actuators[leg]] = 0.0
            model.geom_rgba[self._leg_geoms[leg]] = CRIPPLED_RGBA
        set_constants(model, self._scratch)
        self.applied = dynamics


def _concrete(value: float | Uniform) -> float:
    if isinstance(value, Uniform):
        raise ValueError("sample the dynamics (Dynamics.sample) before applying them")
    return value

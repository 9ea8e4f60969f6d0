"""The plumbing shared by every DynShift robot: dynamics arguments, schedules, context, info.

A DynShift environment is a Gymnasium v5 MuJoCo environment with :class:`DynShiftEnv` in front of it
in the class hierarchy (``class HalfCheetahEnv(DynShiftEnv, v5.HalfCheetahEnv)``). The v5 class keeps
its task (observations, rewards, terminations); this class only decides which physics the model holds:

- at construction the arguments are validated (``ValueError`` naming what is allowed) and recorded for
  pickling (``EzPickle``), so subprocesses, ``AsyncVectorEnv`` and Minari's ``recover_environment``
  rebuild the same shifted env;
- at every reset the ranges are sampled from the env's seeded RNG (``self.np_random``, before the
  v5 reset noise is drawn; nothing is drawn when there are no ranges) and the dynamics are written
  into the model from its nominal arrays;
- during the episode a schedule switches the dynamics between steps, leaving positions and
  velocities as they are;
- ``info["dynamics"]`` describes the physics that produced the transition just returned (at reset:
  the physics the first step will use), and ``context_in_obs`` appends the same values to the
  observation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces, utils

from dynshift_envs.dynamics import FIELDS, Dynamics
from dynshift_envs.model import Leg, ModelEditor, load_model
from dynshift_envs.morphology import LIMB_SCALES, limb_bodies

SCHEDULE_FIELDS = tuple(field for field in FIELDS if field != "morphology")
"""Dynamics fields a schedule entry may change (morphology is structural and fixed per env)."""


def parse_schedule(schedule: Any, base: Dynamics) -> tuple[tuple[int, dict[str, Any]], ...]:
    """Validate a schedule: a list of ``{"step": t, <field>: value, ...}`` with increasing ``t >= 0``.

    Values are checked as :class:`Dynamics` fields (names are checked later, against the model).
    Returns ``((t, changes), ...)``.
    """
    if schedule is None:
        return ()
    if isinstance(schedule, (str, Mapping)) or not isinstance(schedule, Sequence):
        raise ValueError(f"schedule must be a list of {{'step': t, ...}} entries, got {schedule!r}")
    entries = []
    previous = -1
    for entry in schedule:
        if not isinstance(entry, Mapping) or "step" not in entry:
            raise ValueError(f"each schedule entry must be a mapping with a 'step' key, got {entry!r}")
        step = entry["step"]
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"schedule steps must be integers >= 0, got {step!r}")
        if step <= previous:
            raise ValueError(f"schedule steps must be strictly increasing, got {step} after {previous}")
        previous = int(step)
        changes = {key: value for key, value in entry.items() if key != "step"}
        unknown = set(changes) - set(SCHEDULE_FIELDS)
        if unknown or not changes:
            raise ValueError(
                f"schedule entry {dict(entry)!r} must change at least one of: {', '.join(SCHEDULE_FIELDS)}"
                + (" (morphology cannot change mid-episode)" if "morphology" in unknown else "")
            )
        base.replace(**changes)  # validates the values
        entries.append((previous, changes))
    return tuple(entries)


OBSERVATION_DEFAULTS = {"exclude_current_positions_from_observation": True, "include_cfrc_ext_in_observation": True}
"""Gymnasium v5 keywords that change what an observation holds, not the dynamics, with v5's defaults
(the second is Ant's only)."""

OBSERVATION_KEYWORDS = tuple(OBSERVATION_DEFAULTS)
"""A policy trained on observations made with these keywords needs them wherever it acts: evaluation
and videos pass a trained agent's observation keywords to every env they make. MBPO and MOPO, for
instance, drop the Ant's 84 contact-force values (``include_cfrc_ext_in_observation=False``), which
are zero in 96 % of steps and stall an ensemble's fit."""


OPTIONAL_CONTEXT = ("friction", "gravity", "joint_range")
"""Dynamics fields that enter ``context_in_obs`` only where an env changes them."""


class DynShiftEnv:
    """Mixin that puts controlled dynamics shifts in front of a Gymnasium v5 MuJoCo environment.

    Subclasses set :attr:`robot`, and :attr:`legs` / :attr:`morphologies` where the robot has them.
    The keyword arguments are documented in :data:`ARGUMENTS_DOC`, appended to every robot's docstring.
    """

    robot: ClassVar[str] = "robot"
    legs: ClassVar[tuple[Leg, ...]] = ()
    morphologies: ClassVar[tuple[str, ...]] = ("default", *LIMB_SCALES)
    limb_roots: ClassVar[tuple[str, ...]] = ()
    """The bodies whose subtrees are the limbs that ``morphology="big"``/``"small"`` scale."""

    def __init__(
        self,
        *,
        mass: Any = 1.0,
        damping: Any = 1.0,
        scale_inertia: bool = True,
        crippled_legs: Sequence[int | str] = (),
        morphology: str = "default",
        friction: Any = 1.0,
        gravity: Any = 1.0,
        joint_range: Any = 1.0,
        schedule: Sequence[Mapping[str, Any]] | None = None,
        context_in_obs: bool = False,
        **kwargs: Any,
    ):
        base = Dynamics(mass, damping, scale_inertia, crippled_legs, morphology, friction, gravity, joint_range)
        if isinstance(base.morphology, str) and base.morphology not in self.morphologies:
            raise ValueError(
                f"{self.robot} has no morphology {morphology!r}; available: {', '.join(self.morphologies)}, "
                f"or a {{body: scale}} map"
            )
        v5_kwargs = dict(kwargs)
        self._shape = None
        if base.morphology != "default":
            if "xml_file" in kwargs:
                raise ValueError("give either morphology or xml_file, not both")
            if isinstance(base.morphology, str) and not self.limb_roots:  # HalfCheetah: generated files
                v5_kwargs["xml_file"] = str(self.morphology_file(base.morphology))
            else:
                self._shape = self._shape_of(base.morphology)
        entries = parse_schedule(schedule, base)
        maps = [base.friction] + [changes.get("friction") for _, changes in entries]
        self._explicit_contacts = tuple(dict.fromkeys(name for m in maps if isinstance(m, Mapping) for name in m))
        """Geoms named in a friction map: their contacts are explicit pairs (dynshift_envs.contacts)."""
        if not isinstance(context_in_obs, (bool, np.bool_)):
            raise ValueError(f"context_in_obs must be True or False, got {context_in_obs!r}")

        super().__init__(**v5_kwargs)
        utils.EzPickle.__init__(  # record every argument, ours and v5's, for pickling and env specs
            self,
            mass=mass,
            damping=damping,
            scale_inertia=scale_inertia,
            crippled_legs=crippled_legs,
            morphology=morphology,
            friction=friction,
            gravity=gravity,
            joint_range=joint_range,
            schedule=schedule,
            context_in_obs=context_in_obs,
            **kwargs,
        )

        self.editor = ModelEditor(self.model, self.legs, robot=self.robot, morphology=morphology)
        self.base_dynamics = self.editor.normalise(base)
        """The dynamics given at construction (ranges not yet sampled; legs as numbers)."""
        for _, changes in entries:
            self.editor.normalise(self.base_dynamics.replace(**changes))
        self.schedule = entries
        """The validated schedule, ``((step, changes), ...)``."""
        self._context_names = self._context_layout()
        self._pending: list[tuple[int, Dynamics]] = []  # this episode's later switches, soonest last
        self._switch_at: int | None = None
        self._episode_step = 0
        self._activate(self.base_dynamics if not self.base_dynamics.is_random else self.editor.applied)
        self._context_in_obs = bool(context_in_obs)
        if context_in_obs:
            self.observation_space = spaces.Box(
                low=np.concatenate([self.observation_space.low, np.zeros(len(self._context_names))]),
                high=np.concatenate([self.observation_space.high, np.full(len(self._context_names), np.inf)]),
                dtype=self.observation_space.dtype,
            )

    def _shape_of(self, morphology) -> Callable[[mujoco.MjSpec], list]:
        """The ``(body, k)`` pairs a morphology scales, for :func:`dynshift_envs.morphology.build`."""
        def shape(spec: mujoco.MjSpec) -> list:
            if isinstance(morphology, str):
                return [(body, LIMB_SCALES[morphology]) for body in limb_bodies(spec, self.limb_roots)]
            names = [body.name for body in spec.bodies if body.name and body.name != "world"]
            unknown = [name for name in morphology if name not in names]
            if unknown:
                raise ValueError(f"morphology: unknown {self.robot} body name(s) {unknown}; valid names: {', '.join(names)}")
            return [(spec.body(name), k) for name, k in morphology.items()]
        return shape

    @classmethod
    def morphology_file(cls, morphology: str):
        raise NotImplementedError(f"{cls.robot} has no morphologies besides 'default'")

    # ---- what the user reads ------------------------------------------------------------------

    @property
    def dynamics(self) -> Dynamics:
        """The dynamics in force now (concrete values)."""
        return self._active

    @property
    def context_names(self) -> tuple[str, ...]:
        """Names of the values ``context_in_obs`` appends, in order (``mass``, ``damping:bthigh``, …)."""
        return self._context_names

    def _context_layout(self) -> tuple[str, ...]:
        # One value per multiplier when every mention of it is a single number or range, else one per
        # body / joint / geom of the model; Ant adds one flag per leg (1 = working, 0 = crippled).
        # Friction, gravity and joint ranges are in the context only when the env changes them, so
        # every layout from before they existed is unchanged.
        mentions = [self.base_dynamics.to_dict()] + [changes for _, changes in self.schedule]
        names: list[str] = []
        for field, all_names in (("mass", self.editor.body_names), ("damping", self.editor.joint_names),
                                 ("friction", self.editor.geom_names), ("gravity", ()),
                                 ("joint_range", self.editor.limited_joint_names)):
            if field in OPTIONAL_CONTEXT and all(m.get(field, 1.0) == 1.0 for m in mentions):
                continue
            per_name = any(isinstance(m.get(field), Mapping) for m in mentions)
            names += [f"{field}:{name}" for name in all_names] if per_name else [field]
        names += [f"leg_active:{leg}" for leg in self.editor.leg_names]
        return tuple(names)

    def context_vector(self, dynamics: Dynamics) -> np.ndarray:
        """The context values of concrete ``dynamics``, in the order of :attr:`context_names`."""
        values = []
        for name in self._context_names:
            field, _, key = name.partition(":")
            if field == "leg_active":
                values.append(0.0 if self.editor.leg_names.index(key) in dynamics.crippled_legs else 1.0)
            else:
                multiplier = getattr(dynamics, field)
                values.append(multiplier.get(key, 1.0) if isinstance(multiplier, Mapping) else multiplier)
        return np.asarray(values, dtype=np.float64)

    def default_observation(self) -> np.ndarray:
        """The current state's observation as v5's default observation keywords make it, whatever
        keywords this env was made with (no context): what the shipped behaviour policies take."""
        flags = {f"_{key}": default for key, default in OBSERVATION_DEFAULTS.items() if hasattr(self, f"_{key}")}
        kept = {name: getattr(self, name) for name in flags}  # v5 stores each keyword as "_<keyword>"
        try:
            for name, default in flags.items():
                setattr(self, name, default)
            return self._get_obs()
        finally:
            for name, value in kept.items():
                setattr(self, name, value)

    # ---- Gymnasium hooks ----------------------------------------------------------------------

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = load_model(self.fullpath, self._explicit_contacts, robot=self.robot, shape=self._shape)
        # as MujocoEnv does: grow, never shrink, the offscreen framebuffer to the render size
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def reset_model(self) -> np.ndarray:
        rng = self.np_random
        dynamics = self.base_dynamics.sample(rng)
        timeline = [(0, dynamics)]
        for step, changes in self.schedule:
            dynamics = self.editor.normalise(dynamics.replace(**changes).sample(rng))
            if step == 0:
                timeline[0] = (0, dynamics)
            else:
                timeline.append((step, dynamics))
        self._pending = timeline[:0:-1]
        self._switch_at = self._pending[-1][0] if self._pending else None
        self._episode_step = 0
        self._activate(timeline[0][1])
        observation = super().reset_model()
        return np.concatenate((observation, self._context)) if self._context_in_obs else observation

    def _activate(self, dynamics: Dynamics) -> None:
        self.editor.apply(dynamics)
        self._active = dynamics
        self._info = dynamics.to_dict()
        self._info_containers = tuple(k for k, v in self._info.items() if isinstance(v, (list, dict)))
        self._context = self.context_vector(dynamics)

    def step(self, action):
        if self._episode_step == self._switch_at:
            self._activate(self._pending.pop()[1])
            self._switch_at = self._pending[-1][0] if self._pending else None
        result = super().step(action)
        self._episode_step += 1
        result[4]["dynamics"] = self._dynamics_info()
        if self._context_in_obs:
            return (np.concatenate((result[0], self._context)), *result[1:])
        return result

    def _dynamics_info(self) -> dict[str, Any]:
        # A fresh dict, and fresh lists and maps inside it, at every call: users keep infos.
        info = self._info.copy()
        for key in self._info_containers:
            info[key] = info[key].copy()
        return info

    def _get_reset_info(self) -> dict[str, Any]:
        info = super()._get_reset_info()
        info["dynamics"] = self._dynamics_info()
        return info


ARGUMENTS_DOC = """
    ## Dynamics shift (DynShift arguments)
    Every argument below is JSON-serialisable, combinable with the others and with every Gymnasium v5
    argument, and recorded in the env spec, so pickling, ``AsyncVectorEnv`` and Minari's
    ``recover_environment`` rebuild the same shifted environment. Multipliers are relative to the
    nominal v5 model and never compound across resets. Bad values raise ``ValueError`` naming what is
    allowed.

    | Parameter | Default | Description |
    |---|---|---|
    | `mass` | `1.0` | Multiplies every body's mass (and inertia, see `scale_inertia`); derived constants are recomputed with `mj_setConst`. A `{body: multiplier}` map changes only the named bodies; a `(low, high)` pair (also as a map value) is sampled uniformly at every reset from the env's seeded RNG. |
    | `damping` | `1.0` | Multiplies every joint's `dof_damping`; a `{joint: multiplier}` map or `(low, high)` ranges as for `mass`. |
    | `scale_inertia` | `True` | Inertia scales with mass (same density and shape: one step under `mass=k` matches a model recompiled with masses and inertias × k). `False` scales `body_mass` only, the convention of older papers. |
    | `crippled_legs` | `()` | Ant only: legs whose two actuators have zero gear, as numbers 0-3 or names. The control cost still sees the commanded action; crippled legs are drawn red. |
    | `morphology` | `"default"` | `"big"` / `"small"`: every limb × 1.25 / × 0.75 (HalfCheetah's six leg segments from XML files in `assets/`; Hopper's and Walker2d's legs and Ant's four legs built with MuJoCo's `MjSpec` at construction). A `{body: scale}` map scales the named bodies: their geoms' radii and lengths, and their joints, geoms and child bodies about the body's hinge (children stay attached). The total mass stays the nominal one and the robot starts with the nominal clearance under its lowest point. Fixed for the env's lifetime. |
    | `friction` | `1.0` | A number multiplies every geom's friction coefficients (the three columns of `geom_friction`: sliding, torsional, rolling), so every contact's friction × k (MuJoCo takes the element-wise larger of two geoms' coefficients at a contact). A `{geom: multiplier}` map multiplies the friction of **that geom's contacts** by its factor, whichever geom of a contact dominates: the named geoms' contacts become explicit contact pairs carrying the parameters MuJoCo would have combined (`dynshift_envs.contacts`), and a contact of two named geoms gets both factors. `(low, high)` ranges as for `mass`. |
    | `gravity` | `1.0` | Multiplies the gravity vector `opt.gravity`; a number or a `(low, high)` range. |
    | `joint_range` | `1.0` | Kinematic shift: scales a limited joint's range (`jnt_range`) about its centre; k < 1 restricts it (a "broken" joint, as in the off-dynamics benchmark ODRL), k > 1 widens it. A number scales every limited joint; a `{joint: multiplier}` map only the named ones (an unlimited joint such as the root is refused); `(low, high)` ranges as for `mass`. |
    | `schedule` | `None` | Mid-episode switches, e.g. `[{"step": 500, "mass": 0.75, "damping": 0.5}]`: the first 500 steps of each episode run under the earlier dynamics, every later step under the new values (fields not named keep their values; ranges are sampled at reset). Positions and velocities carry over unchanged; each reset restarts the schedule. |
    | `context_in_obs` | `False` | Append the active dynamics (`env.unwrapped.context_names`) to the observation, for context-conditioned (oracle) policies; the observation space grows to match. |

    `info["dynamics"]` holds, at reset and at every step, the dynamics that produced that observation
    as plain values (`mass`, `damping`, `scale_inertia`, `crippled_legs`, `morphology`, `friction`,
    `gravity`, `joint_range`).
    With default arguments the environment is bit-for-bit Gymnasium's v5 environment.
"""
"""The user documentation of the DynShift keyword arguments, shared by every robot's docstring."""

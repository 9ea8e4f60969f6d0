"""The dynamics specification: one frozen, JSON-serialisable value describing a shift.

A :class:`Dynamics` says *what* differs from the nominal robot; :mod:`dynshift_envs.model_editor`
says *how* that is written into a MuJoCo model. Every field is a plain value, so a ``Dynamics`` goes
through ``json.dumps`` (``to_dict``) and back (``Dynamics(**d)``) unchanged, and an environment can be
rebuilt from it in a subprocess or from a saved dataset.

Multipliers (``mass``, ``damping``, ``friction``) take three forms:

- a number: every body (mass), degree of freedom (damping) or geom (friction) is multiplied by it;
- a mapping from body name (mass), joint name (damping) or geom name (friction) to a number: only
  the named ones change;
- a ``(low, high)`` pair, or a mapping whose values are pairs: a :class:`Uniform` range, sampled at
  every reset (:meth:`Dynamics.sample`). Lists of two numbers, as JSON gives them back, count as pairs.

``gravity`` acts on the whole world: a number or a range, never a map.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np


@dataclass(frozen=True)
class Uniform:
    """A multiplier drawn uniformly from ``[low, high]`` at every reset."""

    low: float
    high: float

    def __post_init__(self) -> None:
        _check_multiplier("range low", self.low)
        _check_multiplier("range high", self.high)
        if self.low > self.high:
            raise ValueError(f"a range needs low <= high, got ({self.low}, {self.high})")

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def to_json(self) -> list[float]:
        return [self.low, self.high]


Value = Union[float, Uniform]
"""A multiplier: a number, or a range sampled per reset."""

Multiplier = Union[Value, Mapping[str, Value]]
"""A number or range for everything, or one per name (bodies for mass, joints for damping)."""

MORPHOLOGIES = ("default", "big", "small")
"""Every morphology name any robot knows; each robot accepts its own subset."""


def _check_multiplier(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


def _parse_value(what: str, value: Any) -> Value:
    if isinstance(value, Uniform):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{what} range must be a (low, high) pair, got {value!r}")
        return Uniform(_check_multiplier(f"{what} low", value[0]), _check_multiplier(f"{what} high", value[1]))
    return _check_multiplier(what, value)


def _parse_multiplier(what: str, value: Any) -> Multiplier:
    if isinstance(value, Mapping):
        parsed = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise ValueError(f"{what} names must be strings, got {name!r}")
            parsed[name] = _parse_value(f"{what}[{name!r}]", item)
        return parsed
    return _parse_value(what, value)


def _sample_multiplier(value: Multiplier, rng: np.random.Generator) -> Multiplier:
    if isinstance(value, Mapping):
        return {name: _sample_multiplier(item, rng) for name, item in value.items()}
    return value.sample(rng) if isinstance(value, Uniform) else value


def _is_random(value: Multiplier) -> bool:
    if isinstance(value, Mapping):
        return any(isinstance(item, Uniform) for item in value.values())
    return isinstance(value, Uniform)


def _multiplier_to_json(value: Multiplier) -> Any:
    if isinstance(value, Mapping):
        return {name: _multiplier_to_json(item) for name, item in value.items()}
    return value.to_json() if isinstance(value, Uniform) else value


@dataclass(frozen=True)
class Dynamics:
    """Physical parameters of a robot relative to its nominal (Gymnasium v5) model.

    :param mass: multiplier of body masses — a number, a ``{body: multiplier}`` map, or ranges.
    :param damping: multiplier of joint damping (``dof_damping``) — a number, a ``{joint: multiplier}``
        map, or ranges.
    :param scale_inertia: when true (default) inertia scales with mass, keeping density and shape; when
        false only ``body_mass`` changes (the older literature convention, physically inconsistent).
    :param crippled_legs: Ant legs whose two actuators lose all force, as numbers 0–3 or leg names;
        resolved and checked by the robot that uses them.
    :param morphology: ``"default"``, ``"big"``/``"small"`` (every limb × 1.25 / × 0.75), or a
        ``{body: scale}`` map (that body's geoms × scale, children moved to stay attached); total
        mass kept. Structural: fixed for the lifetime of an environment.
    :param friction: multiplier of contact friction (all three coefficients: sliding, torsional,
        rolling) — a number (every geom's ``geom_friction``, hence every contact, since MuJoCo takes the
        element-wise maximum of two geoms' coefficients), a ``{geom: multiplier}`` map (the friction of
        that geom's contacts, made exact by :mod:`dynshift_envs.contacts` whichever geom dominates), or
        ranges.
    :param gravity: multiplier of the gravity vector ``opt.gravity`` — a number or a range.
    :param joint_range: kinematic shift: multiplier of a limited joint's range about its centre
        (``jnt_range``; k < 1 restricts it, a "broken" joint) — a number (every limited joint), a
        ``{joint: multiplier}`` map, or ranges. Unlimited joints (the root) are refused by name.

    Values are validated on construction (``ValueError`` naming what is allowed); names of bodies,
    joints and legs are validated against the model by the environment.
    """

    mass: Multiplier = 1.0
    damping: Multiplier = 1.0
    scale_inertia: bool = True
    crippled_legs: tuple[int | str, ...] = ()
    morphology: str = "default"
    friction: Multiplier = 1.0
    gravity: Value = 1.0
    joint_range: Multiplier = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mass", _parse_multiplier("mass", self.mass))
        object.__setattr__(self, "damping", _parse_multiplier("damping", self.damping))
        object.__setattr__(self, "friction", _parse_multiplier("friction", self.friction))
        if isinstance(self.gravity, Mapping):
            raise ValueError(f"gravity must be a number or a (low, high) range (it acts on the whole world), "
                             f"got {self.gravity!r}")
        object.__setattr__(self, "gravity", _parse_value("gravity", self.gravity))
        object.__setattr__(self, "joint_range", _parse_multiplier("joint_range", self.joint_range))
        if not isinstance(self.scale_inertia, (bool, np.bool_)):
            raise ValueError(f"scale_inertia must be True or False, got {self.scale_inertia!r}")
        object.__setattr__(self, "scale_inertia", bool(self.scale_inertia))
        legs = self.crippled_legs
        if isinstance(legs, (str, int)) or not isinstance(legs, Sequence):
            raise ValueError(f"crippled_legs must be a list of leg numbers or names, got {legs!r}")
        for leg in legs:
            if isinstance(leg, bool) or not isinstance(leg, (int, np.integer, str)):
                raise ValueError(f"crippled_legs entries must be leg numbers or names, got {leg!r}")
        object.__setattr__(self, "crippled_legs", tuple(int(x) if not isinstance(x, str) else x for x in legs))
        if isinstance(self.morphology, Mapping):
            shape = {}
            for name, k in self.morphology.items():
                if not isinstance(name, str):
                    raise ValueError(f"morphology body names must be strings, got {name!r}")
                shape[name] = _check_multiplier(f"morphology[{name!r}]", k)
            object.__setattr__(self, "morphology", shape)
        elif not isinstance(self.morphology, str) or self.morphology not in MORPHOLOGIES:
            raise ValueError(f"unknown morphology {self.morphology!r}; known: {', '.join(MORPHOLOGIES)}, "
                             f"or a {{body: scale}} map")

    @property
    def is_random(self) -> bool:
        """True when some multiplier is a range, so every reset samples new values."""
        return any(_is_random(value) for value in (self.mass, self.damping, self.friction, self.gravity,
                                                   self.joint_range))

    def sample(self, rng: np.random.Generator) -> Dynamics:
        """Concrete dynamics with every range replaced by a draw from ``rng`` (in the order mass,
        damping, friction, gravity, joint range: settings without the later ranges draw what they
        drew before those existed)."""
        if not self.is_random:
            return self
        mass = _sample_multiplier(self.mass, rng)
        damping = _sample_multiplier(self.damping, rng)
        friction = _sample_multiplier(self.friction, rng)
        gravity = _sample_multiplier(self.gravity, rng)
        joint_range = _sample_multiplier(self.joint_range, rng)
        return dataclasses.replace(self, mass=mass, damping=damping, friction=friction, gravity=gravity,
                                   joint_range=joint_range)

    def replace(self, **changes: Any) -> Dynamics:
        """A copy with some fields changed (validated like the constructor)."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown dynamics field(s) {sorted(unknown)}; allowed: {', '.join(FIELDS)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: numbers, ``{name: number}`` maps, ``[low, high]`` lists for ranges."""
        return {
            "mass": _multiplier_to_json(self.mass),
            "damping": _multiplier_to_json(self.damping),
            "scale_inertia": self.scale_inertia,
            "crippled_legs": list(self.crippled_legs),
            "morphology": dict(self.morphology) if isinstance(self.morphology, Mapping) else self.morphology,
            "friction": _multiplier_to_json(self.friction),
            "gravity": _multiplier_to_json(self.gravity),
            "joint_range": _multiplier_to_json(self.joint_range),
        }


FIELDS = tuple(field.name for field in dataclasses.fields(Dynamics))
"""The names of the dynamics fields, which are also the environments' keyword arguments."""

"""Contacts of one geom that a friction shift can change exactly: MuJoCo's rules, made explicit.

MuJoCo gives a contact between two geoms of equal priority the element-wise **larger** of their two
friction vectors (and the larger ``condim``; ``solref`` and ``solimp`` mixed by ``solmix``; the sum of
their margins); with
unequal priorities, every parameter comes from the geom of higher priority. So scaling one geom's
``geom_friction`` by k changes its contacts by k only where that geom dominates: on Hopper the foot
(2.0) dominates the floor (1.0), and ``friction={"floor": 0.1}`` alone would change nothing.

A per-geom friction shift is therefore made exact this way: every geom named in a friction map gets
its contacts as explicit contact pairs (``<contact><pair>``), one for each geom it can touch under
MuJoCo's collision filters (``contype``/``conaffinity`` bitmasks, different weld bodies, the
parent-child filter, ``<exclude>``), each pair carrying the parameters MuJoCo would have combined for
that contact (:func:`combined`), and the geom itself leaves dynamic collision detection (``contype =
conaffinity = 0``). A shift then multiplies the pairs' friction: the contact of ``g`` with ``p`` gets
``k_g · k_p ·`` its nominal friction (``k = 1`` for a geom not named). Geoms that no map names keep
dynamic contacts. The tests check :func:`combined` against the contacts MuJoCo itself generates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import mujoco
import numpy as np

MIN_SOLMIX = mujoco.mjMINVAL
"""MuJoCo's ``mjMINVAL``: a ``solmix`` below it counts as zero when mixing."""


@dataclass(frozen=True)
class ContactParameters:
    """The parameters of a contact between two geoms, as MuJoCo combines them."""

    condim: int
    friction: np.ndarray
    """Five values: sliding (twice), torsional, rolling (twice)."""
    solref: np.ndarray
    solimp: np.ndarray
    margin: float
    gap: float


def combined(model: mujoco.MjModel, geom1: int, geom2: int) -> ContactParameters:
    """The parameters MuJoCo gives a dynamic contact between ``geom1`` and ``geom2``
    (``mj_contactParam``): the higher-priority geom's, or for equal priorities the larger ``condim``,
    the element-wise larger friction and ``solref``/``solimp`` mixed by ``solmix`` (``solref`` by its
    minimum where either is in direct form); margin and gap are the sums of the two (MuJoCo 4 adds
    the geoms' margins: Hopper's 0.001 each make a contact margin of 0.002)."""
    margin = model.geom_margin[geom1] + model.geom_margin[geom2]
    gap = model.geom_gap[geom1] + model.geom_gap[geom2]
    p1, p2 = model.geom_priority[geom1], model.geom_priority[geom2]
    if p1 != p2:
        g = geom1 if p1 > p2 else geom2
        condim = int(model.geom_condim[g])
        friction3 = model.geom_friction[g].copy()
        solref = model.geom_solref[g].copy()
        solimp = model.geom_solimp[g].copy()
    else:
        condim = int(max(model.geom_condim[geom1], model.geom_condim[geom2]))
        friction3 = np.maximum(model.geom_friction[geom1], model.geom_friction[geom2])
        mix1, mix2 = model.geom_solmix[geom1], model.geom_solmix[geom2]
        if mix1 >= MIN_SOLMIX and mix2 >= MIN_SOLMIX:
            mix = mix1 / (mix1 + mix2)
        elif mix1 < MIN_SOLMIX and mix2 < MIN_SOLMIX:
            mix = 0.5
        else:
            mix = 0.0 if mix1 < MIN_SOLMIX else 1.0
        ref1, ref2 = model.geom_solref[geom1], model.geom_solref[geom2]
        if ref1[0] > 0 and ref2[0] > 0:
            solref = mix * ref1 + (1 - mix) * ref2
        else:
            solref = np.minimum(ref1, ref2)
        solimp = model.geom_solimp[geom1] * mix + model.geom_solimp[geom2] * (1 - mix)
    friction = friction3[[0, 0, 1, 2, 2]]
    return ContactParameters(condim, friction, solref, solimp, float(margin), float(gap))


def can_collide(model: mujoco.MjModel, geom1: int, geom2: int) -> bool:
    """Whether MuJoCo's dynamic collision detection may ever generate a contact between the two geoms:
    their bitmasks match, their bodies are not welded together, not parent and child (unless the
    parent-child filter is disabled or one is the world), and not excluded."""
    if geom1 == geom2:
        return False
    if not (model.geom_contype[geom1] & model.geom_conaffinity[geom2]
            or model.geom_contype[geom2] & model.geom_conaffinity[geom1]):
        return False
    body1, body2 = model.geom_bodyid[geom1], model.geom_bodyid[geom2]
    weld1, weld2 = model.body_weldid[body1], model.body_weldid[body2]
    if weld1 == weld2:
        return False
    parent1 = model.body_weldid[model.body_parentid[weld1]]
    parent2 = model.body_weldid[model.body_parentid[weld2]]
    filter_parent = not model.opt.disableflags & mujoco.mjtDisableBit.mjDSBL_FILTERPARENT
    if filter_parent and weld1 != 0 and weld2 != 0 and (weld1 == parent2 or weld2 == parent1):
        return False
    low, high = sorted((int(body1), int(body2)))
    return (low << 16) + high not in model.exclude_signature


def partners(model: mujoco.MjModel, geom: int) -> list[int]:
    """Every geom that ``geom`` can touch (:func:`can_collide`), in id order."""
    return [other for other in range(model.ngeom) if can_collide(model, geom, other)]


def make_contacts_explicit(spec: mujoco.MjSpec, model: mujoco.MjModel, geoms: Iterable[str]) -> None:
    """Edit ``spec`` (which compiled to ``model``) so that every contact of the named geoms is an
    explicit pair with the parameters MuJoCo would have combined, and those geoms leave dynamic
    collision detection. Pairs are added in (geom, partner) id order, each once."""
    ids = sorted({model.geom(name).id for name in geoms})
    seen: set[tuple[int, int]] = set()
    for geom in ids:
        for other in partners(model, geom):
            key = (min(geom, other), max(geom, other))
            if key in seen:
                continue
            seen.add(key)
            names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) for g in key]
            if not all(names):
                raise RuntimeError(f"geom {geom} touches an unnamed geom ({key}); name it in the XML to shift it")
            parameters = combined(model, *key)
            spec.add_pair(geomname1=names[0], geomname2=names[1], condim=parameters.condim,
                          friction=parameters.friction, solref=parameters.solref, solimp=parameters.solimp,
                          margin=parameters.margin, gap=parameters.gap)
    for geom in ids:
        element = spec.geom(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, geom))
        element.contype = 0
        element.conaffinity = 0

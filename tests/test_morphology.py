"""Big and small HalfCheetah: generated files, shape, mass, warning-free simulation."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from dynshift_envs import morphology

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LEG_GEOMS = morphology.LEG_BODIES  # each leg body has one geom of the same name


@pytest.mark.parametrize("name", ["big", "small"])
def test_committed_xml_equals_generator_output(name):
    assert (ASSETS / f"half_cheetah_{name}.xml").read_text() == morphology.generate(name)
    assert morphology.asset_path(name).read_text() == morphology.generate(name)  # the installed copy


@pytest.mark.parametrize("name, scale", [("big", 1.25), ("small", 0.75)])
def test_shape_change_and_total_mass(name, scale):
    base = gym.make("DynShift/HalfCheetah-v0").unwrapped.model
    model = gym.make("DynShift/HalfCheetah-v0", morphology=name).unwrapped.model
    assert model.body_mass[1:].sum() == pytest.approx(14.0, rel=1e-12)
    for geom in LEG_GEOMS:
        np.testing.assert_allclose(model.geom(geom).size[:2], base.geom(geom).size[:2] * scale, rtol=1e-12)
        np.testing.assert_allclose(model.geom(geom).pos, base.geom(geom).pos * scale, rtol=1e-12)
    for geom in ("torso", "head"):
        np.testing.assert_array_equal(model.geom(geom).size, base.geom(geom).size)
    for body in ("bshin", "bfoot", "fshin", "ffoot"):
        np.testing.assert_allclose(model.body(body).pos, base.body(body).pos * scale, rtol=1e-12)
    for body in ("bthigh", "fthigh"):  # hips stay on the torso
        np.testing.assert_array_equal(model.body(body).pos, base.body(body).pos)
    # same joints, actuators and observation layout as the nominal robot
    assert (model.nq, model.nv, model.nu) == (base.nq, base.nv, base.nu)
    np.testing.assert_array_equal(model.dof_damping, base.dof_damping)
    # the torso starts at the height that keeps the nominal foot clearance
    assert morphology._lowest_leg_point(model) == pytest.approx(morphology._lowest_leg_point(base), abs=1e-12)


@pytest.mark.parametrize("name", ["big", "small"])
def test_compiles_and_simulates_a_second_without_warnings(name, capfd):
    capfd.readouterr()
    model = mujoco.MjModel.from_xml_path(str(morphology.asset_path(name)))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for _ in range(int(1.0 / model.opt.timestep)):
        data.ctrl[:] = rng.uniform(-1, 1, model.nu)
        mujoco.mj_step(model, data)
    assert [w.number for w in data.warning] == [0] * len(data.warning)
    assert np.all(np.isfinite(data.qpos))
    env = gym.make("DynShift/HalfCheetah-v0", morphology=name)
    env.reset(seed=0)
    for _ in range(20):
        env.step(env.action_space.sample())
    assert "WARNING" not in capfd.readouterr().err


def test_morphology_is_recorded_and_combines_with_mass():
    env = gym.make("DynShift/HalfCheetah-v0", morphology="small", mass=2.0)
    _, info = env.reset(seed=0)
    assert info["dynamics"]["morphology"] == "small"
    assert env.unwrapped.model.body_mass[1:].sum() == pytest.approx(28.0, rel=1e-12)

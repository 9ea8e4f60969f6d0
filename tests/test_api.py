"""Registration, Gymnasium's checker, pickling, vector envs, rendering, grids and bad input."""

from __future__ import annotations

import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dynshift_envs
from dynshift_envs import ENV_IDS, GRIDS, get_grid

SHIFTS = {
    "DynShift/HalfCheetah-v0": {"mass": 1.5, "damping": [0.5, 1.0], "morphology": "big", "context_in_obs": True},
    "DynShift/Walker2d-v0": {"mass": {"torso": 1.5}, "schedule": [{"step": 3, "damping": 0.5}]},
    "DynShift/Hopper-v0": {"mass": [0.5, 1.5], "scale_inertia": False},
    "DynShift/Ant-v0": {"crippled_legs": ["back_leg", 3], "damping": 1.75, "context_in_obs": True},
}


def test_ids_registered_with_time_limit():
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        assert spec.max_episode_steps == 1000 and isinstance(spec.entry_point, str)
    assert gym.make("DynShift/Hopper-v0", max_episode_steps=5).spec.max_episode_steps == 5


def test_make_with_module_prefix_needs_no_import():
    code = "import gymnasium as gym; e = gym.make('dynshift_envs:DynShift/Hopper-v0', mass=2.0); print(e.spec.id)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "DynShift/Hopper-v0"


@pytest.mark.filterwarnings("ignore:.*Box observation space (minimum|maximum) value:UserWarning")  # v5's own spaces
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env(env_id):
    check_env(gym.make(env_id, **SHIFTS[env_id]).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_v5_argument_still_works(env_id):
    env = gym.make(env_id, mass=1.5, reset_noise_scale=0.0, frame_skip=2)
    obs, _ = env.reset(seed=0)
    again, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs, again)  # no reset noise
    assert env.unwrapped.frame_skip == 2


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_keeps_every_perturbation(env_id):
    env = gym.make(env_id, **SHIFTS[env_id])
    clone = pickle.loads(pickle.dumps(env))
    for e in (env, clone):
        e.reset(seed=0)
    np.testing.assert_array_equal(clone.unwrapped.model.body_mass, env.unwrapped.model.body_mass)
    np.testing.assert_array_equal(clone.unwrapped.model.dof_damping, env.unwrapped.model.dof_damping)
    np.testing.assert_array_equal(clone.unwrapped.model.actuator_gear, env.unwrapped.model.actuator_gear)
    np.testing.assert_array_equal(clone.unwrapped.model.geom_size, env.unwrapped.model.geom_size)
    action = env.action_space.sample()
    for _ in range(5):
        a, b = env.step(action), clone.step(action)
        np.testing.assert_array_equal(a[0], b[0])
        assert a[4]["dynamics"] == b[4]["dynamics"]


def test_env_spec_kwargs_rebuild_the_env():
    env = gym.make("DynShift/Ant-v0", **SHIFTS["DynShift/Ant-v0"])
    rebuilt = gym.make(gym.spec(env.spec.id).id, **env.spec.kwargs)
    np.testing.assert_array_equal(rebuilt.unwrapped.model.actuator_gear, env.unwrapped.model.actuator_gear)
    assert env.spec.kwargs["crippled_legs"] == ["back_leg", 3]


def test_async_vector_env_keeps_every_perturbation():
    kwargs = [{"mass": 0.5}, {"damping": 1.75}, {"morphology": "small"}, {"mass": [0.5, 1.5]}]
    fns = [lambda kw=kw: gym.make("DynShift/HalfCheetah-v0", **kw) for kw in kwargs]
    async_env = gym.vector.AsyncVectorEnv(fns)
    sync_env = gym.vector.SyncVectorEnv(fns)
    try:
        obs_a, info_a = async_env.reset(seed=42)
        obs_s, info_s = sync_env.reset(seed=42)
        np.testing.assert_array_equal(obs_a, obs_s)
        assert info_a["dynamics"]["mass"].tolist() == info_s["dynamics"]["mass"].tolist()
        assert info_a["dynamics"]["morphology"].tolist() == ["default", "default", "small", "default"]
        actions = np.random.default_rng(0).uniform(-1, 1, (10, 4, 6))
        for a in actions:
            np.testing.assert_array_equal(async_env.step(a)[0], sync_env.step(a)[0])
    finally:
        async_env.close()
        sync_env.close()


def test_render_rgb_array_and_shifts_render_differently():
    frames = {}
    for name, kwargs in {
        "cheetah": {},
        "big": {"morphology": "big"},
        "ant": {},
        "crippled": {"crippled_legs": [0]},
    }.items():
        env_id = "DynShift/Ant-v0" if name in ("ant", "crippled") else "DynShift/HalfCheetah-v0"
        env = gym.make(env_id, render_mode="rgb_array", width=96, height=96, **kwargs)
        env.reset(seed=0)
        frames[name] = env.render()
        env.close()
    for frame in frames.values():
        assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8 and frame.std() > 0
    assert np.abs(frames["cheetah"].astype(int) - frames["big"]).sum() > 0
    red = frames["crippled"].astype(int)
    assert np.abs(frames["ant"].astype(int) - red).sum() > 0
    assert ((red[..., 0] - red[..., 1]) > 100).sum() > ((frames["ant"][..., 0].astype(int) - frames["ant"][..., 1]) > 100).sum()


def test_grids():
    grid = get_grid("mass-damping")
    assert len(grid) == 49 and {"mass": 0.25, "damping": 1.75} in grid.settings
    assert len(GRIDS["ant-crippled"]) == 10
    assert [s["morphology"] for s in GRIDS["cheetah-morphology"].settings] == ["big", "small"]
    assert [s["friction"] for s in GRIDS["odrl-friction"].settings] == [0.1, 0.5, 2.0, 5.0]
    assert [s["gravity"] for s in GRIDS["odrl-gravity"].settings] == [0.1, 0.5, 2.0, 5.0]
    assert len(GRIDS["morphology"].env_ids) == len(GRIDS["kinematic"].env_ids) == 4
    for grid in GRIDS.values():  # every setting builds on every env it is for
        for env_id in grid.env_ids:
            gym.make(env_id, **grid.settings[-1])
    with pytest.raises(ValueError, match="mass-damping"):
        get_grid("nope")


BAD = [
    ("DynShift/HalfCheetah-v0", {"mass": {"tail": 2.0}}, "valid names: torso"),
    ("DynShift/HalfCheetah-v0", {"damping": {"knee": 2.0}}, "valid names: rootx"),
    ("DynShift/Ant-v0", {"crippled_legs": ["middle_leg"]}, "front_left_leg"),
    ("DynShift/Ant-v0", {"crippled_legs": [4]}, "0-3"),
    ("DynShift/Ant-v0", {"crippled_legs": 1}, "list of leg"),
    ("DynShift/Hopper-v0", {"crippled_legs": [0]}, "only Ant"),
    ("DynShift/Hopper-v0", {"mass": 0.0}, "positive finite"),
    ("DynShift/Hopper-v0", {"mass": -1.0}, "positive finite"),
    ("DynShift/Hopper-v0", {"damping": float("nan")}, "positive finite"),
    ("DynShift/Hopper-v0", {"mass": float("inf")}, "positive finite"),
    ("DynShift/Hopper-v0", {"mass": "heavy"}, "positive finite"),
    ("DynShift/Hopper-v0", {"mass": (1.5, 0.5)}, "low <= high"),
    ("DynShift/Hopper-v0", {"mass": (0.5, 1.0, 1.5)}, r"\(low, high\)"),
    ("DynShift/Hopper-v0", {"damping": {"thigh_joint": (2, 1)}}, "low <= high"),
    ("DynShift/Hopper-v0", {"morphology": "medium"}, r"known: default, big, small, or a \{body: scale\} map"),
    ("DynShift/HalfCheetah-v0", {"morphology": "huge"}, "default, big, small"),
    ("DynShift/HalfCheetah-v0", {"morphology": "big", "xml_file": "half_cheetah.xml"}, "morphology or xml_file"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": -1, "mass": 2.0}]}, ">= 0"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 5, "mass": 2.0}, {"step": 5, "mass": 1.0}]}, "increasing"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 5, "mass": 2.0}, {"step": 3, "mass": 1.0}]}, "increasing"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 1.5, "mass": 2.0}]}, "integers"),
    ("DynShift/Walker2d-v0", {"schedule": [{"mass": 2.0}]}, "'step' key"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 5}]}, "at least one of"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 5, "wind": 2.0}]}, "mass, damping"),
    ("DynShift/HalfCheetah-v0", {"schedule": [{"step": 5, "morphology": "big"}]}, "cannot change mid-episode"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 5, "mass": {"wing": 2.0}}]}, "valid names"),
    ("DynShift/Walker2d-v0", {"schedule": [{"step": 5, "mass": -2.0}]}, "positive finite"),
    ("DynShift/Walker2d-v0", {"schedule": {"step": 5, "mass": 2.0}}, "list of"),
    ("DynShift/Walker2d-v0", {"scale_inertia": "yes"}, "True or False"),
    ("DynShift/Walker2d-v0", {"context_in_obs": 1}, "True or False"),
]


@pytest.mark.parametrize("env_id, kwargs, message", BAD)
def test_bad_input_raises_value_error_naming_the_choices(env_id, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(env_id, **kwargs)


def test_dynamics_round_trips_through_json():
    import json

    dynamics = dynshift_envs.Dynamics(mass={"torso": (0.5, 1.5)}, damping=0.5, crippled_legs=[1])
    again = dynshift_envs.Dynamics(**json.loads(json.dumps(dynamics.to_dict())))
    assert again == dynamics and again.is_random

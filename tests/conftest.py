"""Shared fixtures: headless rendering, the slow-test switch, reference models built by MuJoCo."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco's GL backends

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import dynshift_envs  # noqa: F401  (registers the ids)
from dynshift_envs import ENV_IDS, V5_TWINS


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fp32_unless_asked(request, monkeypatch):
    """``precision="auto"`` resolves to fp32 in tests, so results do not depend on the machine's bf16
    units (tests marked ``real_precision`` see the machine's own choice)."""
    if "real_precision" in request.keywords:
        return
    from dynshift_agents import precision

    monkeypatch.setattr(precision, "auto_precision", lambda: "fp32")


@pytest.fixture(params=ENV_IDS)
def env_id(request):
    return request.param


@pytest.fixture
def v5_id(env_id):
    return V5_TWINS[env_id]


def make(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs)


def copy_state(source_model, source_data, target_model, target_data) -> None:
    """Copy the full integration state (qpos, qvel, act, warm start, ctrl, time) between two models."""
    kind = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(source_model, kind))
    mujoco.mj_getState(source_model, source_data, state, kind)
    mujoco.mj_setState(target_model, target_data, state, kind)
    mujoco.mj_forward(target_model, target_data)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A private Minari store and DynShift home for one test module."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("store")
        patch.setenv("MINARI_DATASETS_PATH", str(root / "datasets"))
        patch.setenv("DYNSHIFT_HOME", str(root / "home"))
        yield root


@pytest.fixture(scope="module")
def tiny(store):
    """A 3 000-step HalfCheetah *medium* dataset (three episodes: IQL's reward scale needs two), for
    the model-free learners' tests."""
    import torch

    from dynshift_agents.data import collect, load_transitions

    torch.set_num_threads(1)
    dataset_id = collect("halfcheetah", "medium", size=3000, seed=0, progress=False).spec.dataset_id
    return dataset_id, load_transitions(dataset_id)


TINY_LEARNER = dict(net_arch=(16, 16), batch_size=32)


def make_learner(table: dict, name: str, data, seed: int = 0, **overrides):
    """A model-free learner of ``table`` (name → class, config class, tiny settings) on ``data``."""
    cls, config, extra = table[name]
    return cls("DynShift/HalfCheetah-v0", data, config(**TINY_LEARNER | extra | overrides), seed=seed)


def assert_resumes_exactly(build, data, tmp_path, steps: int = 200) -> None:
    """An agent from ``build()`` trained 2·``steps`` steps in one go, and one trained ``steps``,
    saved, loaded (``load``, any class) and trained on to 2·``steps``, end with identical parameters:
    the checkpoint carries every random generator's state. Other random draws in between (torch's
    global generator used for something else) must not matter. Training blocks of ``steps`` (the
    divergence guard samples a batch between blocks)."""
    import torch

    from dynshift_agents.algorithms import agent as agent_module
    from dynshift_agents.algorithms import load

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(agent_module, "BLOCK_STEPS", steps)
        whole = build().learn(2 * steps, progress_bar=False, log_formats=())
        expected = [p.detach().clone() for p in whole.parameters()]
        build().learn(steps, progress_bar=False, log_formats=(), checkpoint_dir=tmp_path / "ckpt")
        torch.manual_seed(12345)  # a new process: the global generator starts elsewhere
        torch.rand(7)
        resumed = load(tmp_path / "ckpt", dataset=data).learn(2 * steps, progress_bar=False, log_formats=())
    for a, b in zip(expected, resumed.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def tiny_world(tmp_path_factory, size: int, config):
    """``size`` random HalfCheetah transitions collected into a private Minari store, and a world
    model with ``config`` fitted on them: the fixture of the algorithm tests."""
    import torch

    from dynshift_agents.data import collect, load_transitions
    from dynshift_agents.world_model import WorldModel

    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(tmp_path_factory.mktemp("store")))
        data = load_transitions(collect("halfcheetah", "random", size=size, progress=False).spec.dataset_id)
    model = WorldModel(17, 6, config)
    model.fit(data.obs, data.actions, data.rewards, data.next_obs)
    return data, model


@pytest.fixture
def script():
    """``script("fb_diagnostics")``: a module of ``scripts/`` (not a package), loaded from its file."""
    import importlib.util
    from pathlib import Path

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load

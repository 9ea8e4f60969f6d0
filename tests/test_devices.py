"""Runs on a chosen torch device, and one set of run options for every entry point (issue 38).

Every algorithm, built and trained with ``device=D``, holds every parameter, buffer, optimiser state,
dataset row and model rollout on D; a checkpoint records D and loads on another device. The ``cpu``
cases run everywhere; the ``cuda`` ones where a CUDA device is present (skipped here otherwise).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from test_learner_fixture import ACT, ENV, MODEL_FREE, OBS, SMALL, synthetic_dataset

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]
MODEL_BASED = {
    "mopo": dict(SMALL, rollout_batch_size=64, rollout_freq=10, rollout_length=3),
    "augwm": dict(SMALL, rollout_batch_size=64, rollout_freq=10, rollout_length=3, context=True),
    "rambo": dict(SMALL, rollout_batch_size=64, rollout_freq=10, rollout_length=3, bc_steps=5, adversary_steps=5,
                  adversary_batch_size=16),
}


def build(name: str, device: str, data=None):
    from dynshift_agents.algorithms import ALGORITHMS
    from dynshift_agents.world_model import WorldModel, WorldModelConfig

    torch.manual_seed(0)
    data = data if data is not None else synthetic_dataset()
    algorithm = name.split("-")[0]
    cls = ALGORITHMS[algorithm]
    if name in MODEL_BASED:
        model = WorldModel(OBS, ACT, WorldModelConfig(hidden=(16, 16), weight_decay=(0, 0, 0), precision="fp32"))
        return cls(ENV, model, data, cls.config_class(**MODEL_BASED[name]), seed=1, device=device)
    return cls(ENV, data, cls.config_class(**MODEL_FREE[name]), seed=1, device=device)


def placed(agent) -> dict[str, torch.Tensor]:
    """Every tensor a run allocates, by path: what a checkpoint saves, the buffer's dataset and model rows,
    the world model, FB's dataset. An optimiser's ``step`` counters are left out: torch keeps them on
    the CPU for any device (non-capturable Adam)."""
    found: dict[str, torch.Tensor] = {}

    def walk(tree, prefix):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else ()
        for key, value in items:
            if isinstance(value, torch.Tensor):
                if key != "step":
                    found[f"{prefix}{key}"] = value
            else:
                walk(value, f"{prefix}{key}.")

    walk(agent.tensors(), "")
    buffer = getattr(getattr(agent, "learner", None), "replay_buffer", None)
    if buffer is not None:
        walk({"real": buffer.real, "model": buffer.model}, "buffer.")
    if hasattr(agent, "world_model"):
        walk(agent.world_model.state_dict(), "world_model.")
    for name in ("_obs", "_next_obs", "_actions", "_rewards", "z"):
        if isinstance(getattr(agent, name, None), torch.Tensor):
            found[f"fb.{name}"] = getattr(agent, name)
    return found


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(set(MODEL_FREE) - {"cql-lagrange"} | set(MODEL_BASED)))
def test_everything_a_run_allocates_lives_on_its_device(name, device, tmp_path):
    agent = build(name, device).learn(20, progress_bar=False, log_formats=(), checkpoint_dir=tmp_path / "ckpt")
    tensors = placed(agent)
    assert len(tensors) > 10
    wrong = {path: str(t.device) for path, t in tensors.items() if t.device.type != torch.device(device).type}
    assert not wrong, f"{name}: not on {device}: {wrong}"
    actions = agent.predict(synthetic_dataset(8).obs, deterministic=True)[0]
    assert isinstance(actions, np.ndarray) and actions.shape == (8, ACT)
    from dynshift_agents.algorithms import describe

    assert describe(tmp_path / "ckpt")["device"] == str(agent.device)


@CUDA
@pytest.mark.parametrize("name", ["td3bc", "iql", "fb", "mopo"])
def test_a_checkpoint_saved_on_one_device_loads_on_another(name, tmp_path):
    from dynshift_agents.algorithms import load

    data = synthetic_dataset()
    trained = build(name, "cuda", data).learn(20, progress_bar=False, log_formats=(), checkpoint_dir=tmp_path / "ckpt")
    on_cpu = load(tmp_path / "ckpt", dataset=data, device="cpu")
    assert all(t.device.type == "cpu" for t in placed(on_cpu).values())
    obs = data.obs[:16]
    np.testing.assert_allclose(on_cpu.predict(obs, deterministic=True)[0], trained.predict(obs, deterministic=True)[0],
                               rtol=1e-4, atol=1e-5)
    on_cpu.learn(30, progress_bar=False, log_formats=())  # and trains on
    assert on_cpu.gradient_steps == 30


@pytest.mark.parametrize("device, message", [("gpu", "cpu, cuda, cuda:N or auto"), ("cuda:x", "cpu, cuda, cuda:N or auto"),
                                             ("", "cpu, cuda, cuda:N or auto")])
def test_a_device_that_is_not_one_is_refused_naming_the_choices(device, message):
    from dynshift_agents.run_options import RunOptions

    with pytest.raises(ValueError, match=message):
        RunOptions(device=device)
    with pytest.raises(ValueError, match=message):
        build("bc", device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is absent")
def test_cuda_where_there_is_none_is_refused_and_auto_takes_the_cpu():
    from dynshift_agents.run_options import resolve_device

    with pytest.raises(ValueError, match="sees no CUDA device; use cpu or auto"):
        resolve_device("cuda:0")
    assert resolve_device("auto") == "cpu"


def test_the_python_apis_run_options_are_the_command_lines_and_the_sweeps():
    import inspect

    from dynshift_agents import cli, experiment
    from dynshift_agents.run_options import DEFAULTS, RunOptions
    from dynshift_agents.sweep.spec import Budget

    args = cli.build_parser().parse_args(["train", "bc", "--dataset", "dynshift/hopper/medium-v0"])
    assert cli.run_options(args) == DEFAULTS == RunOptions.of(None)
    budget = Budget(gradient_steps=DEFAULTS.gradient_steps)
    assert {f.name: getattr(budget, f.name) for f in dataclasses.fields(Budget)} == {
        f.name: getattr(DEFAULTS, f.name) for f in dataclasses.fields(Budget)}
    # experiment.train states no default of its own: every run option comes from RunOptions
    parameters = inspect.signature(experiment.train).parameters
    assert parameters["gradient_steps"].default is None and "eval_episodes" not in parameters
    with pytest.raises(TypeError, match="unknown run options \\['eval_episode'\\]"):
        RunOptions.of(eval_episode=3)


@pytest.mark.parametrize("flag, value", [("--gradient-steps", "-5"), ("--gradient-steps", "0"), ("--eval-episodes", "0"),
                                         ("--checkpoint-every", "0"), ("--threads", "0"), ("--device", "tpu")])
def test_the_command_line_refuses_bad_run_options_at_once(flag, value, capsys):
    from dynshift_agents import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "bc", "--dataset", "dynshift/hopper/medium-v0", flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_a_sweep_spec_takes_a_device_and_refuses_a_bad_one(tmp_path):
    from dynshift_agents.sweep.plan import build_plan
    from dynshift_agents.sweep.spec import SpecError, parse_spec

    values = {"name": "d", "output": str(tmp_path / "out"), "budget": {"gradient_steps": 100},
              "datasets": [{"id": "dynshift/hopper/medium-v0"}], "algorithms": {"BC": {"algorithm": "bc"}}}
    assert parse_spec(values).device == "cpu"
    spec = parse_spec(values | {"device": "cuda:1"})
    commands = [t.command for t in build_plan(spec) if t.kind in ("train", "evaluate")]
    assert commands and all(c[-2:] == ["--device", "cuda:1"] for c in commands)
    with pytest.raises(SpecError, match="device: device must be one of cpu, cuda, cuda:N or auto"):
        parse_spec(values | {"device": "gpu"})
    with pytest.raises(SpecError, match="budget: eval_episodes must be an integer ≥ 1"):
        parse_spec(values | {"budget": {"gradient_steps": 100, "eval_episodes": 0}})


@pytest.mark.parametrize("device", DEVICES)
def test_dara_classifiers_train_on_the_device_and_give_the_cpus_numbers(device):
    from dynshift_agents.adaptation import DARA, DARAConfig

    source, target = synthetic_dataset(400), synthetic_dataset(300)
    target = dataclasses.replace(target, next_obs=target.next_obs + 0.5)
    config = DARAConfig(hidden=(16,), steps=50)
    on_device, on_cpu = DARA(OBS, ACT, config, device=device), DARA(OBS, ACT, config)
    on_device.fit(source, target, seed=0)
    on_cpu.fit(source, target, seed=0)
    assert all(p.device.type == torch.device(device).type
               for p in [*on_device.q_sas.parameters(), *on_device.q_sa.parameters()])
    np.testing.assert_allclose(on_device.delta_r(source), on_cpu.delta_r(source), rtol=1e-4, atol=1e-5)

"""The shipped behaviour policies: present for every robot, safe to load, deterministic, as good as stated."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from dynshift_agents.behaviour import SampledActor, UniformPolicy, index, load_policy, policy_info, references
from dynshift_envs import ROBOTS
from dynshift_agents.evaluation import episode_returns, episode_totals


@pytest.fixture(params=sorted(ROBOTS))
def robot(request):
    return request.param


def test_every_robot_ships_medium_expert_and_mixed_snapshots(robot):
    shipped = index()[robot]
    assert {"medium", "expert"} <= set(shipped)
    mixed = sorted((p for n, p in shipped.items() if n.startswith("mixed-")), key=lambda p: p.steps)
    assert mixed and mixed[-1].steps < shipped["medium"].steps < shipped["expert"].steps + 1
    medium, expert = shipped["medium"], shipped["expert"]
    assert medium.return_mean < expert.return_mean
    ref = references(robot)
    assert ref["random"] < medium.return_mean and ref["episodes"] >= 100
    # D4RL's medium is "about a third" of its expert; in D4RL's own data the ratio ranges from about
    # 0.4 to 0.6. SAC's learning curves jump, so an early-stopped snapshot lands somewhere in 0.2–0.7.
    fraction = (medium.return_mean - ref["random"]) / (expert.return_mean - ref["random"])
    assert 0.2 < fraction < 0.7


def test_weights_load_without_pickled_code_on_the_cpu(robot):
    for info in index()[robot].values():
        path = resources.files("dynshift_agents.policies").joinpath(info.file)
        with resources.as_file(path) as file:
            state = torch.load(file, map_location="cpu", weights_only=True)
        assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in state.values())
    policy = load_policy(robot, "medium")
    assert next(policy.parameters()).device.type == "cpu" and not policy.training


def test_policies_act_deterministically(robot):
    policy = load_policy(robot, "expert")
    obs = np.random.default_rng(0).normal(size=(8, policy.observation_space.shape[0]))
    a, _ = policy.predict(obs, deterministic=True)
    b, _ = load_policy(robot, "expert").predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    assert policy.action_space.contains(a[0].astype(policy.action_space.dtype))
    c, _ = policy.predict(obs, deterministic=False)
    assert not np.array_equal(a, c)


def test_the_collection_actor_computes_sb3s_policy(robot):
    policy = load_policy(robot, "medium")
    obs = np.random.default_rng(0).normal(size=(64, policy.observation_space.shape[0]))
    deterministic, _ = SampledActor(policy, 0).predict(obs, deterministic=True)
    np.testing.assert_allclose(deterministic, policy.predict(obs, deterministic=True)[0], atol=2e-5)
    # with the same Gaussian noise, SAC's squashed sample tanh(mean + std * eps)
    with torch.no_grad():
        mean, log_std, _ = policy.actor.get_action_dist_params(torch.as_tensor(obs, dtype=torch.float32))
    eps = np.random.default_rng(7).standard_normal(mean.shape)
    sampled, _ = SampledActor(policy, np.random.default_rng(7)).predict(obs)
    np.testing.assert_allclose(sampled, np.tanh(mean.double().numpy() + np.exp(log_std.double().numpy()) * eps),
                               atol=2e-5)
    assert sampled.dtype == np.float32 and np.all(np.abs(sampled) <= 1)
    again, _ = SampledActor(policy, np.random.default_rng(7)).predict(obs)
    np.testing.assert_array_equal(sampled, again)


def test_the_collection_actor_gives_each_row_the_same_action_in_any_batch(robot):
    """What makes a collection the same on every CPU: no row depends on the batch it was computed in
    (SB3's float32 predict does, by one rounding, with a kernel chosen per shape and CPU)."""
    actor = SampledActor(load_policy(robot, "medium"))
    obs = np.random.default_rng(1).normal(size=(37, actor.observation_space.shape[0]))
    batch, _ = actor.predict(obs, deterministic=True)
    alone = np.concatenate([actor.predict(obs[i:i + 1], deterministic=True)[0] for i in range(len(obs))])
    np.testing.assert_array_equal(batch, alone)
    np.testing.assert_array_equal(batch[:10], actor.predict(obs[:10], deterministic=True)[0])


def test_unknown_policies_are_clear_errors():
    with pytest.raises(ValueError, match="shipped"):
        policy_info("hopper", "legendary")
    with pytest.raises(ValueError, match="halfcheetah"):
        load_policy("cheetah", "medium")


def test_uniform_policy_is_seeded_and_in_bounds():
    from gymnasium.spaces import Box

    space = Box(-1, 1, (3,), np.float32)
    a, _ = UniformPolicy(space, 1).predict(np.zeros((5, 4)))
    b, _ = UniformPolicy(space, 1).predict(np.zeros((5, 4)))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 3) and (np.abs(a) <= 1).all()


def test_one_episode_of_each_shipped_policy_returns_what_it_returned_when_recorded(robot):
    """One deterministic episode (env seed 0) of medium and expert returns the recorded figure within 5 %
    (room for another CPU's rounding over 1 000 chaotic steps), a band that excludes the uniform
    policy's episode, recorded beside them: a wrong or mis-loaded policy cannot pass."""
    import json
    from pathlib import Path

    recorded = json.loads((Path(__file__).parent / "fixtures" / "behaviour_returns.json").read_text())[robot]
    for name in ("medium", "expert"):
        returns = episode_returns(load_policy(robot, name), ROBOTS[robot].env_id, episodes=1, seed=0)
        assert returns[0] == pytest.approx(recorded[name], rel=0.05), (name, returns)
        assert recorded["random"] != pytest.approx(recorded[name], rel=0.05)  # the band is narrow enough


@pytest.mark.slow
def test_the_stated_returns_reproduce(robot):
    """The table's figures: 10 deterministic episodes with seeds 0..9 (``scripts/ship_behaviour.py``)."""
    for name in ("medium", "expert"):
        info = policy_info(robot, name)
        returns = episode_returns(load_policy(robot, name), ROBOTS[robot].env_id, episodes=10, seed=0)
        assert returns.mean() == pytest.approx(info.return_mean, rel=0.02, abs=2.0)
        assert returns.std() == pytest.approx(info.return_std, rel=0.2, abs=5.0)


def test_the_behaviour_grid_script_reports_each_settings_return_and_its_ratio_to_nominal(tmp_path):
    """``scripts/behaviour_grid.py``: the nominal row is the policy's own evaluation; bad grids are named."""
    script = Path(__file__).parents[1] / "scripts" / "behaviour_grid.py"
    grid = tmp_path / "line.json"
    grid.write_text(json.dumps([{"mass": 1.0}, {"mass": 1.5}]))
    out = subprocess.run([sys.executable, str(script), "hopper", "--grid", str(grid), "--policies", "expert",
                          "--episodes", "1", "--forward"], capture_output=True, text=True, check=True).stdout
    rows = {line.split(" | ")[0]: line for line in out.splitlines() if line.startswith("| {")}
    assert set(rows) == {'| {"mass": 1.0}', '| {"mass": 1.5}'}
    nominal = episode_totals(load_policy("hopper", "expert"), ROBOTS["hopper"].env_id, episodes=1, seed=0,
                             info_keys=("reward_forward",))
    assert (f"{nominal['return'][0]:.1f} ± 0.0 (× 1.00); forward {nominal['reward_forward'][0]:.1f} in "
            f"{nominal['length'][0]} steps") in rows['| {"mass": 1.0}']
    bad = subprocess.run([sys.executable, str(script), "hopper", "--grid", "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "not one of mass-damping" in bad.stderr


def test_the_medium_rule_skips_a_snapshot_that_survives_without_hopping(tmp_path, capsys, script):
    """``scripts/ship_behaviour.py``'s medium rule on real policies, on the nominal hopper: a snapshot
    whose return passes a third of the expert's by the healthy reward alone (the heavier hopper's
    standing medium policy: 1 045 on the nominal robot, of which 45 is forward reward, against the
    expert's 2 100) is skipped for the first one that also moves forward."""
    import argparse
    import shutil

    ship = script("ship_behaviour")
    policies = resources.files("dynshift_agents") / "policies"
    run = tmp_path / "hopper"
    (run / "snapshots").mkdir(parents=True)
    steps = {20_000: "hopper-mixed-1.pt", 100_000: "hopper@mass1p5-medium.pt", 160_000: "hopper-medium.pt",
             300_000: "hopper-expert.pt"}
    for step, file in steps.items():
        shutil.copyfile(policies / file, run / "snapshots" / f"step_{step:07d}.pt")
    evals = {20_000: 200.0, 100_000: 1044.1, 160_000: 2089.7, 300_000: 3119.5}  # as a training run logs them
    rows = [{"steps": float(s), "eval_mean": e} for s, e in evals.items()]
    measure = ship.progress(run, ROBOTS["hopper"].env_id, argparse.Namespace(progress_episodes=2, env_kwargs={}))
    medium = ship.choose_medium(rows, rows[-1], 1 / 3, measure)
    assert medium["steps"] == 160_000
    out = capsys.readouterr().out
    assert "medium candidate 100000" in out and "below" in out.split("medium candidate 100000")[1].splitlines()[0]
    assert "medium candidate 20000" not in out  # below the return test: never measured

"""The model-free learners on the SB3 layer (BC, CQL, IQL, TD3+BC): defining terms on hand-made inputs,
tiny training runs, safe checkpoints, and the command line."""

from __future__ import annotations

import csv
import functools
import json
import math
import pickle

import numpy as np
import pytest
import torch

import dynshift_envs.base
from dynshift_agents import cli
from dynshift_agents.algorithms import (ALGORITHMS, BC, CQL, IQL, TD3BC, BCConfig, CQLConfig, DivergenceError, IQLConfig,
                                        TD3BCConfig, UnsafeCheckpointError, describe, load)
from dynshift_agents.algorithms.cql import conservative_term
from dynshift_agents.algorithms.iql import advantage_weights, expectile_loss, reward_scale
from dynshift_agents.algorithms.td3bc import td3bc_actor_loss

from conftest import assert_resumes_exactly, make_learner
from dynshift_agents.data import Transitions, collect, load_transitions

ENV = "DynShift/HalfCheetah-v0"
LEARNERS = {"bc": (BC, BCConfig, {}), "cql": (CQL, CQLConfig, {"n_actions": 3}), "iql": (IQL, IQLConfig, {}),
            "td3bc": (TD3BC, TD3BCConfig, {})}


make = functools.partial(make_learner, LEARNERS)


# -- defining terms ----------------------------------------------------------------------------------


def test_cql_conservative_term_is_the_importance_sampled_log_sum_exp():
    q_data = torch.tensor([[0.5], [1.0]])
    q_random, q_current, q_next = torch.tensor([[1.0], [0.0]]), torch.tensor([[2.0], [1.0]]), torch.tensor([[3.0], [2.0]])
    log_pi_current, log_pi_next = torch.tensor([[0.5], [0.0]]), torch.tensor([[1.0], [-1.0]])
    term = conservative_term(q_data, q_random, q_current, log_pi_current, q_next, log_pi_next, action_dim=2)
    uniform = 2 * math.log(0.5)  # log density of U([-1, 1]^2)
    rows = [[1.0 - uniform, 2.0 - 0.5, 3.0 - 1.0], [0.0 - uniform, 1.0 - 0.0, 2.0 + 1.0]]
    expected = np.mean([np.log(np.exp(r).sum()) for r in rows]) - 0.75
    assert float(term) == pytest.approx(expected, rel=1e-6)
    # Q raised on the data alone lowers the term one for one
    assert float(conservative_term(q_data + 1, q_random, q_current, log_pi_current, q_next, log_pi_next, 2)) == \
        pytest.approx(expected - 1, rel=1e-6)


@pytest.mark.parametrize("gap, direction", [(1e3, -1), (-1e3, 1)])
def test_cql_lagrange_multiplier_moves_against_the_gap(tiny, gap, direction):
    """α' grows while the weighted term exceeds the gap τ and shrinks while it is below."""
    _, data = tiny
    agent = make("cql", data, lagrange_gap=gap, lagrange_learning_rate=1e-2)
    agent.learn(20, progress_bar=False)
    assert direction * float(agent.learner.log_alpha_prime.detach()) > 0.1


def test_iql_expectile_loss_and_clipped_weights():
    diff = torch.tensor([1.0, -1.0, 2.0])
    assert float(expectile_loss(diff, 0.7)) == pytest.approx((0.7 * 1 + 0.3 * 1 + 0.7 * 4) / 3)
    assert float(expectile_loss(diff, 0.5)) == pytest.approx(float(0.5 * diff.pow(2).mean()))
    weights = advantage_weights(torch.tensor([0.0, -1.0, 10.0]), beta=3.0, max_weight=100.0)
    assert weights.tolist() == pytest.approx([1.0, math.exp(-3.0), 100.0])


def test_iql_reward_scale_is_1000_over_the_return_range(tiny):
    _, data = tiny
    scale = reward_scale(data)
    assert scale == pytest.approx(1000 / (data.episode_returns.max() - data.episode_returns.min()))
    agent = make("iql", data)
    np.testing.assert_allclose(agent.replay_buffer.real["rewards"][:, 0], data.rewards * scale, rtol=1e-6)
    single = Transitions(data.obs, data.actions, data.rewards, data.next_obs, data.terminals, data.timeouts,
                         episode_returns=np.array([1.0]))
    with pytest.raises(ValueError, match="scale_rewards=False"):
        reward_scale(single)


def test_td3bc_lambda_makes_the_q_term_scale_free():
    rng = np.random.default_rng(0)
    q = torch.as_tensor(rng.normal(5, 2, size=(64, 1)), dtype=torch.float32)
    pi, actions = torch.zeros(64, 2), torch.full((64, 2), 0.5)
    loss, lam = td3bc_actor_loss(q, pi, actions, alpha=2.5)
    assert float(lam) == pytest.approx(2.5 / float(q.abs().mean()))
    assert float(loss) == pytest.approx(-2.5 * float(q.mean() / q.abs().mean()) + 0.25, rel=1e-5)
    scaled, _ = td3bc_actor_loss(100 * q, pi, actions, alpha=2.5)
    assert float(scaled) == pytest.approx(float(loss), rel=1e-5)  # returns ×100: the same trade-off


def test_td3bc_and_bc_standardise_states(tiny):
    _, data = tiny
    for name in ("td3bc", "bc"):
        agent = make(name, data)
        stored = agent.replay_buffer.real["observations"]
        np.testing.assert_allclose(stored.mean(0), 0, atol=1e-3)
        np.testing.assert_allclose(stored.std(0)[data.obs.std(0) > 1e-3], 1, atol=1e-3)
        raw = data.obs[:8].astype(np.float64)
        direct = agent.learner.predict(((raw - agent.encoder.mean) / agent.encoder.std).astype(np.float32),
                                       deterministic=True)[0]
        np.testing.assert_array_equal(agent.predict(raw)[0], direct)


# -- training, checkpoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_trains_without_a_real_env_saves_loads_and_predicts_identically(tiny, tmp_path, monkeypatch, name):
    _, data = tiny

    def forbidden(*args, **kwargs):
        raise AssertionError("a real env was stepped or reset during offline training")

    agent = make(name, data)
    with monkeypatch.context() as patch:
        patch.setattr(dynshift_envs.base.DynShiftEnv, "step", forbidden)
        patch.setattr(dynshift_envs.base.DynShiftEnv, "reset_model", forbidden)
        agent.learn(300, progress_bar=False, checkpoint_dir=tmp_path / "ckpt", log_dir=tmp_path / "log",
                    log_formats=("csv",))
    assert agent.gradient_steps == 300 and agent.learner._n_updates == 300
    loaded = load(tmp_path / "ckpt")
    assert type(loaded) is type(agent) and loaded.config == agent.config and loaded.gradient_steps == 300
    obs = data.obs[:16]
    np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    saved, restored = agent.learner.get_parameters(), loaded.learner.get_parameters()
    assert saved.keys() == restored.keys()  # policy, optimisers (and IQL's value net): resuming continues the run
    for k, v in saved["policy"].items():
        assert torch.equal(v, restored["policy"][k]), k
    rows = list(csv.DictReader((tmp_path / "log" / "progress.csv").open()))
    assert len(rows) == 1 and any(k.endswith("_loss") and float(v) == float(v) for k, v in rows[0].items() if v)
    loaded.attach_dataset(data)
    loaded.learn(400, progress_bar=False)
    assert loaded.gradient_steps == 400 and loaded.learner._n_updates == 400


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_same_seed_same_first_losses(tiny, name):
    _, data = tiny

    def losses(seed):
        return {k: v for k, v in make(name, data, seed=seed).train_block(20).items() if k.endswith("_loss")}

    a, b, c = losses(0), losses(0), losses(1)
    assert a and a == b and a != c


class _WritesAFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def write_payload(path, key: str, marker) -> None:
    """A file that, if unpickled, would create ``marker`` (what a malicious checkpoint could do)."""
    with open(path, "wb") as f:
        pickle.dump({key: _WritesAFile(str(marker))}, f, protocol=2)


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_never_runs(tiny, tmp_path):
    _, data = tiny
    make("bc", data).save(tmp_path / "ckpt")
    marker = tmp_path / "pwned"
    write_payload(tmp_path / "ckpt" / "tensors.pt", "agent", marker)
    with pytest.raises(UnsafeCheckpointError, match="not loaded"):
        load(tmp_path / "ckpt")
    assert not marker.exists()
    (tmp_path / "ckpt" / "tensors.pt").unlink()  # the format before safe checkpoints: SB3's zip
    (tmp_path / "ckpt" / "learner.zip").write_bytes(b"PK")
    with pytest.raises(UnsafeCheckpointError, match="convert"):
        describe(tmp_path / "ckpt")


def test_world_model_pt_in_a_checkpoint_is_read_safely(tmp_path):
    from dynshift_agents.world_model import WorldModel

    marker = tmp_path / "pwned"
    write_payload(tmp_path / "world_model.pt", "config", marker)
    with pytest.raises(pickle.UnpicklingError):
        WorldModel.load(tmp_path / "world_model.pt")
    assert not marker.exists()


def test_dara_classifiers_carrying_a_pickle_payload_are_refused_and_never_run(tmp_path):
    from dynshift_agents.adaptation import DARA, DARAConfig

    DARA(3, 1, DARAConfig(hidden=(8,))).save(tmp_path / "dara.pt")
    assert DARA.load(tmp_path / "dara.pt").config == DARAConfig(hidden=(8,))  # the real file loads
    marker = tmp_path / "pwned"
    write_payload(tmp_path / "dara.pt", "dims", marker)
    with pytest.raises(pickle.UnpicklingError):
        DARA.load(tmp_path / "dara.pt")
    assert not marker.exists()


def test_a_shipped_behaviour_policy_carrying_a_pickle_payload_is_refused_and_never_runs(tmp_path, monkeypatch):
    from dynshift_agents import behaviour

    marker = tmp_path / "pwned"
    policies = tmp_path / "policies"
    policies.mkdir()
    write_payload(policies / "hopper-medium.pt", "actor", marker)
    monkeypatch.setattr(behaviour.resources, "files", lambda package: policies)
    with pytest.raises(pickle.UnpicklingError):
        behaviour.load_policy("hopper", "medium")
    assert not marker.exists()


# -- command line ------------------------------------------------------------------------------------


def test_model_free_learners_from_the_command_line_fit_no_world_model(tiny, store, tmp_path, capsys):
    dataset_id, _ = tiny
    for name in ("bc", "td3bc"):
        out = tmp_path / name
        cli.main(["train", name, "--dataset", dataset_id, "--out", str(out), "--no-progress", "--gradient-steps", "2000",
                  "--set", "net_arch=[16,16]", "--set", "batch_size=32", "--eval-every", "1000", "--eval-episodes", "1"])
        assert describe(out)["algorithm"] == name
        capsys.readouterr()
        cli.main(["evaluate", str(out), "--env", ENV, "--episodes", "1", "--json"])  # a run directory is accepted
        assert json.loads(capsys.readouterr().out)["episodes"] == 1
    assert not (store / "home" / "world_models").exists()
    capsys.readouterr()
    cli.main(["plot", str(tmp_path / "bc"), str(tmp_path / "td3bc"), "--out", str(tmp_path / "curves.png"),
              "--line", "BC=30"])
    printed = capsys.readouterr().out
    assert printed.startswith("bc: 1000: ") and "\ntd3bc: 1000: " in printed and " 2000: " in printed
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert {"bc", "cql", "iql", "td3bc"} <= set(ALGORITHMS)


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_a_run_resumed_from_its_checkpoint_trains_as_one_never_interrupted(tiny, tmp_path, name):
    _, data = tiny
    assert_resumes_exactly(lambda: make(name, data), data, tmp_path)


# -- learning (slow) -----------------------------------------------------------------------------------

SLOW_BUDGET = 50_000
"""Gradient steps of the slow learning tests: the budget of docs/results/model-free (seed 0)."""


def _short_of_the_data(measured: str):
    return pytest.mark.xfail(strict=True, reason=f"measured at {SLOW_BUDGET} steps, seed 0: {measured} "
                                                 "(docs/results/README.md); the budget where it learns is open")


@pytest.mark.slow
@pytest.mark.parametrize("robot, name", [
    ("halfcheetah", "td3bc"),
    pytest.param("halfcheetah", "iql", marks=_short_of_the_data("25.9 < the data's 29.1")),
    # on hopper both settle on a faster gait that falls after about 270 steps, as 157 of the data's 196
    # episodes do; γ = 0.995 or 0.999 did not help at this budget (experiments/hopper-discount.toml)
    pytest.param("hopper", "td3bc", marks=_short_of_the_data("27.9 < the data's 47.1")),
    pytest.param("hopper", "iql", marks=_short_of_the_data("23.2 < the data's 47.1")),
])
def test_learns_at_least_the_datas_own_score_on_medium_data(tmp_path_factory, monkeypatch, robot, name):
    """IQL and TD3+BC at SLOW_BUDGET steps (seed 0, default sizes) score at least the data itself.
    Where that was measured not to hold, the case is a strict xfail: it fails the run once it passes,
    so the mark is removed when a budget or a fix makes it true."""
    from dynshift_agents import experiment
    from dynshift_agents.data import d4rl_score

    root = tmp_path_factory.mktemp("learning")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root / "datasets"))
    torch.set_num_threads(1)
    dataset = collect(robot, "medium", seed=0, progress=False)
    data_score = d4rl_score(robot, np.mean(load_transitions(dataset.spec.dataset_id).episode_returns))
    agent = experiment.train(name, dataset.spec.dataset_id, SLOW_BUDGET, seed=0, out=root / "run", progress=False,
                             log_formats=())
    score = experiment.evaluate(agent, agent.env_id, episodes=10)["normalised_score"]
    assert score >= data_score, f"{name} on {robot} medium: {score:.1f} < the data's {data_score:.1f}"


def test_the_divergence_guard_serves_the_model_free_learners(tiny, tmp_path):
    _, data = tiny
    broken = Transitions(data.obs, np.full_like(data.actions, np.nan), data.rewards, data.next_obs, data.terminals,
                         data.timeouts, episode_returns=data.episode_returns)
    with pytest.raises(DivergenceError, match="no critic"):  # BC has no critic: its loss is what diverges
        make("bc", broken).learn(2000, progress_bar=False)
    agent = make("td3bc", data, q_limit=1.0)  # returns far above the limit: Q passes it in the first block
    with pytest.raises(DivergenceError, match=r"limit 1\)"):
        agent.learn(50_000, progress_bar=False, checkpoint_dir=tmp_path / "ckpt", checkpoint_every=1000)
    assert agent.gradient_steps == 1000 and not (tmp_path / "ckpt").exists()  # nothing saved past the guard


def test_periodic_evaluation_rows_survive_a_resume_without_loss_or_repeat(tiny, tmp_path, capsys):
    """A run killed after its checkpoint at 2 000 steps and resumed to 4 000 has each evaluation row once."""
    dataset_id, _ = tiny
    out = tmp_path / "run"
    args = ["train", "bc", "--dataset", dataset_id, "--out", str(out), "--no-progress", "--set", "net_arch=[16,16]",
            "--set", "batch_size=32", "--eval-every", "1000", "--eval-episodes", "1", "--checkpoint-every", "2000"]
    cli.main(args + ["--gradient-steps", "3000"])
    with (out / "progress.csv").open() as f:  # as if killed after step 3 000's row, before its checkpoint
        rows = list(csv.DictReader(f))
    assert describe(out)["gradient_steps"] == 3000
    (out / "checkpoint" / "agent.json").write_text(json.dumps(describe(out) | {"gradient_steps": 2000}))
    cli.main(args + ["--gradient-steps", "4000"])
    with (out / "progress.csv").open() as f:
        resumed = list(csv.DictReader(f))
    steps = [int(float(r["time/gradient_steps"])) for r in resumed]
    evaluated = [int(float(r["time/gradient_steps"])) for r in resumed if r.get("eval/d4rl_score")]
    assert steps == [1000, 2000, 3000, 4000] and evaluated == [1000, 2000, 3000, 4000]
    assert resumed[0]["eval/d4rl_score"] == rows[0]["eval/d4rl_score"]  # the earlier session's rows kept as written


def test_kept_checkpoints_are_the_run_as_it_was_at_each_step(tiny, tmp_path):
    """--keep-checkpoints: RUN/checkpoints/step_<k>/ for every checkpoint, each the agent at k steps
    (a run trained to 1 000 steps only predicts as the kept step_1000 of a run trained on to 3 000),
    its files hard links, not copies."""
    dataset_id, data = tiny
    base = ["train", "td3bc", "--dataset", dataset_id, "--no-progress", "--set", "net_arch=[16,16]", "--set",
            "batch_size=32", "--checkpoint-every", "1000", "--seed", "3"]
    cli.main(base + ["--out", str(tmp_path / "long"), "--gradient-steps", "3000", "--keep-checkpoints"])
    cli.main(base + ["--out", str(tmp_path / "short"), "--gradient-steps", "1000"])
    kept = tmp_path / "long" / "checkpoints"
    assert sorted(p.name for p in kept.iterdir()) == ["step_00001000", "step_00002000", "step_00003000"]
    assert not (tmp_path / "short" / "checkpoints").exists()
    obs = data.obs[:64]
    early, short, last = (load(p) for p in (kept / "step_00001000", tmp_path / "short", tmp_path / "long"))
    assert early.gradient_steps == 1000 and last.gradient_steps == 3000
    np.testing.assert_array_equal(early.predict(obs)[0], short.predict(obs)[0])
    assert not np.array_equal(early.predict(obs)[0], last.predict(obs)[0])
    final = tmp_path / "long" / "checkpoint" / "tensors.pt"
    assert (kept / "step_00003000" / "tensors.pt").stat().st_ino == final.stat().st_ino

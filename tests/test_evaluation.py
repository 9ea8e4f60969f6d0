"""Evaluation over settings: batched equals serial, grids resume, context-conditioned agents get ẑ."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dynshift_agents.evaluation import episode_returns, episode_totals, evaluate_settings, read_records, run_grid

ENV = "DynShift/Hopper-v0"
SETTINGS = [{"mass": m, "damping": d} for m in (0.5, 1.0, 1.5) for d in (0.5, 1.5)]


class RowwisePolicy:
    """Deterministic and batch-invariant by construction (elementwise maths only), so a batched and a
    one-at-a-time evaluation must agree to the bit. (Neural networks may differ in the last bits of
    their actions between batch sizes, because BLAS picks different kernels.)"""

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation)
        return np.tanh(np.sin(3.0 * obs[:, :3]) + obs[:, 3:6]).astype(np.float32), state


def load_rowwise(_source):
    return RowwisePolicy()


def test_episode_totals_sum_the_reward_terms_of_each_episode():
    """The info terms summed per episode add up to the return (Hopper's reward is forward + ctrl +
    survive); a term the env does not report sums to 0; the returns are episode_returns'."""
    keys = ("reward_forward", "reward_ctrl", "reward_survive", "not_a_term")
    totals = episode_totals(RowwisePolicy(), ENV, 3, seed=5, info_keys=keys, mass=1.5)
    np.testing.assert_allclose(totals["reward_forward"] + totals["reward_ctrl"] + totals["reward_survive"],
                               totals["return"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(totals["not_a_term"], 0.0)
    np.testing.assert_array_equal(totals["return"], episode_returns(RowwisePolicy(), ENV, 3, seed=5, mass=1.5))
    # Gymnasium v5 pays the healthy reward only while healthy: a fall's last step earns none of it
    assert (totals["reward_survive"] == totals["length"] - (totals["length"] < 1000)).all()
    assert (totals["length"] < 1000).any()  # the rowwise policy falls, so the last check is not vacuous


def test_batched_and_serial_give_identical_records():
    batched = evaluate_settings(RowwisePolicy(), ENV, SETTINGS, episodes=2, seed=7)
    serial = [r for i, s in enumerate(SETTINGS)
              for r in evaluate_settings(RowwisePolicy(), ENV, [s], episodes=2, seed=7, indices=[i])]
    assert batched == serial
    assert len(batched) == 12 and len({r["return"] for r in batched}) > 6  # the settings do differ
    one = episode_returns(RowwisePolicy(), ENV, 2, seed=7, mass=1.5, damping=0.5)
    np.testing.assert_array_equal(one, [r["return"] for r in batched if r["setting_index"] == 4])


def test_an_interrupted_grid_resumes_without_losing_or_repeating(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    policies = {"a": None, "b": None}
    full = run_grid(policies, ENV, SETTINGS, 2, tmp_path / "full.jsonl", seed=1, loader=load_rowwise, settings_per_batch=2)

    import dynshift_agents.evaluation as evaluation

    real, calls = evaluation._batch_job, {"n": 0}

    def interrupted(job):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(evaluation, "_batch_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_grid(policies, ENV, SETTINGS, 2, path, seed=1, loader=load_rowwise, settings_per_batch=2)
    partial = read_records(path)
    assert len(partial) == 3 * 2 * 2  # three batches of two settings × two episodes
    with path.open("a") as f:  # and a write torn by the interruption
        f.write('{"policy": "b", "setting_in')
    monkeypatch.setattr(evaluation, "_batch_job", real)
    resumed = run_grid(policies, ENV, SETTINGS, 2, path, seed=1, loader=load_rowwise, settings_per_batch=2)

    def key(r):
        return r["policy"], r["setting_index"], r["episode"]

    assert sorted(resumed, key=key) == sorted(full, key=key)
    assert len({key(r) for r in resumed}) == len(resumed) == 2 * 6 * 2
    with pytest.raises(FileExistsError, match="another grid"):
        run_grid(policies, ENV, SETTINGS[:2], 2, path, seed=1, loader=load_rowwise)


def test_grid_in_worker_processes_matches(tmp_path):
    serial = run_grid({"a": None}, ENV, SETTINGS, 1, tmp_path / "s.jsonl", loader=load_rowwise, settings_per_batch=3)
    parallel = run_grid({"a": None}, ENV, SETTINGS, 1, tmp_path / "p.jsonl", loader=load_rowwise,
                        settings_per_batch=3, workers=2)
    assert sorted(map(json.dumps, serial)) == sorted(map(json.dumps, parallel))


class ContactFreeAntPolicy:
    """A trained agent's stand-in: made on Ant observations without contact forces."""

    env_kwargs = {"include_cfrc_ext_in_observation": False, "mass": 1.5}

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        obs = np.asarray(observation)
        assert obs.shape[-1] == 27, obs.shape
        return np.tanh(obs[:, 5:13]).astype(np.float32), state


def test_grids_keep_the_policys_observation_keywords_and_apply_the_settings():
    settings = [{"mass": 0.5, "damping": 1.0}, {"crippled_legs": [1]}]
    records = evaluate_settings(ContactFreeAntPolicy(), "DynShift/Ant-v0", settings, episodes=1, seed=0)
    assert [r["setting"] for r in records] == settings and all(r["length"] > 0 for r in records)
    # the setting, not the policy's training dynamics (mass 1.5), is what the episode ran on
    alone = episode_returns(ContactFreeAntPolicy(), "DynShift/Ant-v0", 1, seed=0, mass=0.5, damping=1.0)
    assert records[0]["return"] == alone[0]


def test_an_episodes_discounted_returns_against_a_direct_sum():
    from dynshift_agents.episodes import Episode

    rewards = np.array([1.0, -2.0, 0.5, 3.0])
    episode = Episode(0, None, None, rewards, np.zeros(4, bool), np.zeros(4, bool), None)
    expected = [sum(0.9 ** k * rewards[t + k] for k in range(4 - t)) for t in range(4)]
    np.testing.assert_allclose(episode.discounted_returns(0.9), expected, rtol=1e-12)

"""DARA's classifiers and reward change on synthetic dynamics with a known density ratio."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynshift_agents.adaptation import DARA, DARAConfig
from dynshift_agents.data import Transitions

SIGMA = 0.3
FAST = dict(hidden=(64, 64), steps=3000, learning_rate=1e-3, batch_size=256)


def dynamics(n: int, gain: float, seed: int) -> Transitions:
    """1-D states, s' = s + gain·a + N(0, SIGMA²): the two domains differ only in ``gain``."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 1)).astype(np.float32)
    actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
    next_obs = (obs + gain * actions + SIGMA * rng.normal(size=(n, 1))).astype(np.float32)
    return Transitions(obs, actions, rng.normal(size=n).astype(np.float32), next_obs, np.zeros(n, bool),
                       np.zeros(n, bool), episode_returns=np.array([0.0, 1.0]))


def true_delta(data: Transitions) -> np.ndarray:
    """log p_src(s'|s,a) − log p_tgt(s'|s,a) for gains 1.0 (source) and 0.5 (target)."""
    s, a, s2 = data.obs[:, 0], data.actions[:, 0], data.next_obs[:, 0]
    return (-(s2 - s - a) ** 2 + (s2 - s - 0.5 * a) ** 2) / (2 * SIGMA ** 2)


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    source, target = dynamics(20_000, 1.0, 0), dynamics(20_000, 0.5, 1)
    dara = DARA(1, 1, DARAConfig(noise_std=0.0, **FAST))
    dara.fit(source, target, seed=0)
    return dara, source, target


def test_delta_r_matches_the_analytic_log_ratio(fitted):
    dara, _, _ = fitted
    test = dynamics(4000, 1.0, 7)
    estimate, truth = dara.delta_r(test), np.clip(true_delta(test), -10, 10)
    assert np.corrcoef(estimate, truth)[0, 1] > 0.95
    assert np.mean(np.abs(estimate - truth)) < 0.25 * np.std(truth)
    assert dara.report["sas_accuracy"] > 0.6 and abs(dara.report["sa_accuracy"] - 0.5) < 0.05  # (s, a) alike


def test_relabelling_changes_source_rewards_only_and_clips(fitted):
    dara, source, target = fitted
    union = dara.dataset(source, target)
    n = len(target)
    for field in ("obs", "actions", "rewards", "next_obs", "terminals", "timeouts"):
        assert np.array_equal(getattr(union, field)[:n], getattr(target, field)), field  # target bit-identical
    for field in ("obs", "actions", "next_obs", "terminals", "timeouts"):
        assert np.array_equal(getattr(union, field)[n:], getattr(source, field)), field
    change = source.rewards - union.rewards[n:]
    np.testing.assert_allclose(change, 0.1 * dara.delta_r(source), rtol=1e-5, atol=1e-6)
    assert change.mean() > 0  # source transitions the target would not make lose reward
    tight = DARA(1, 1, DARAConfig(noise_std=0.0, clip=0.5, **FAST))
    tight.q_sas.load_state_dict(dara.q_sas.state_dict())
    tight.q_sa.load_state_dict(dara.q_sa.state_dict())
    assert np.abs(tight.delta_r(source)).max() <= 0.5 and np.isclose(np.abs(tight.delta_r(source)).max(), 0.5)


def test_noise_is_applied_in_training_only():
    torch.set_num_threads(1)
    source, target = dynamics(2000, 1.0, 0), dynamics(2000, 0.5, 1)
    small = dict(FAST, steps=200)
    noisy, clean = DARA(1, 1, DARAConfig(noise_std=1.0, **small)), DARA(1, 1, DARAConfig(noise_std=0.0, **small))
    noisy.fit(source, target, seed=0)
    clean.fit(source, target, seed=0)
    assert not np.allclose(noisy.delta_r(source), clean.delta_r(source))  # training differs
    np.testing.assert_array_equal(noisy.delta_r(source), noisy.delta_r(source))  # evaluation is deterministic


def test_identical_domains_give_no_reward_change():
    torch.set_num_threads(1)
    source, target = dynamics(10_000, 0.5, 0), dynamics(10_000, 0.5, 1)
    dara = DARA(1, 1, DARAConfig(**FAST))
    dara.fit(source, target, seed=0)
    delta = dara.delta_r(source)
    assert abs(delta.mean()) < 0.05 and delta.std() < 0.15
    assert abs(dara.report["sas_accuracy"] - 0.5) < 0.05


def test_classifiers_save_and_load_without_unpickling(fitted, tmp_path):
    dara, source, _ = fitted
    dara.save(tmp_path / "dara.pt")
    loaded = DARA.load(tmp_path / "dara.pt")
    np.testing.assert_array_equal(loaded.delta_r(source), dara.delta_r(source))
    assert loaded.report == dara.report and loaded.config == dara.config


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="eta"):
        DARAConfig(eta=-1)
    with pytest.raises(ValueError, match="holdout"):
        DARAConfig(holdout=1.5)


def test_dara_in_front_of_two_base_learners_from_the_command_line(tiny, tmp_path, capsys):
    from dynshift_agents import cli
    from dynshift_agents.algorithms import describe, load
    from dynshift_agents.data import collect

    target_id, _ = tiny
    source_id = collect("halfcheetah", "medium", size=3000, seed=1, env_kwargs={"mass": 1.5},
                        progress=False).spec.dataset_id
    for base in ("td3bc", "iql"):
        out = tmp_path / base
        cli.main(["train", "dara", "--base", base, "--target-dataset", target_id, "--source-dataset", source_id,
                  "--out", str(out), "--no-progress", "--gradient-steps", "200", "--set", "net_arch=[16,16]",
                  "--set", "batch_size=32", "--dara-set", "steps=100", "--dara-set", "hidden=[16]", "--eta", "0.2"])
        assert "DARA classifiers: held-out accuracy" in capsys.readouterr().out
        meta = describe(out)
        assert meta["algorithm"] == base and meta["dataset_id"] == target_id
        dara = meta["provenance"]["dara"]
        assert dara["source_dataset"] == source_id and dara["config"]["eta"] == 0.2 and (out / "dara.pt").exists()
        assert load(out).provenance == meta["provenance"]
    cli.main(["train", "dara", "--base", "td3bc", "--target-dataset", target_id, "--source-dataset", source_id,
              "--out", str(tmp_path / "td3bc"), "--no-progress", "--gradient-steps", "300", "--set", "net_arch=[16,16]",
              "--set", "batch_size=32", "--dara-set", "steps=100", "--dara-set", "hidden=[16]", "--eta", "0.2"])
    printed = capsys.readouterr().out
    assert "resuming" in printed and "DARA classifiers" not in printed  # the classifiers are reused
    # MOPO: the world model is fitted on both robots' data, with the relabelled source rewards
    out = tmp_path / "mopo"
    cli.main(["train", "dara", "--base", "mopo", "--target-dataset", target_id, "--source-dataset", source_id,
              "--out", str(out), "--no-progress", "--gradient-steps", "100", "--set", "net_arch=[16,16]",
              "--set", "batch_size=32", "--set", "rollout_batch_size=50", "--set", "rollout_freq=50",
              "--dara-set", "steps=100", "--dara-set", "hidden=[16]", "--world-model-set", "hidden=[16,16,16,16]",
              "--world-model-set", "members=3", "--world-model-set", "elites=2", "--world-model-set", "max_epochs=2"])
    meta = describe(out)
    assert meta["algorithm"] == "mopo" and meta["provenance"]["dara"]["world_model"]["source_rewards"] == "relabelled"
    from dynshift_agents.world_model import WorldModel

    model = WorldModel.load(out / "world_model.pt")
    assert model.metadata["fit"]["train_rows"] + model.metadata["fit"]["holdout_rows"] == 6000


def test_1t_is_the_first_tenth_and_medium_expert_keeps_both_halves(store):
    """DARA's 1T: the first tenth of each segment (medium-expert: of the medium part and of the
    expert part), cut at the segment's tenth, with where it came from recorded."""
    import json

    from dynshift_agents.data import collect, first_fraction, list_datasets, load_transitions

    source_id = collect("hopper", "medium-expert", size=600, seed=0, progress=False).spec.dataset_id
    subset = first_fraction(source_id, 0.1)
    assert subset.spec.dataset_id == "dynshift/hopper/medium-expert-first0p1-v0"
    full, tenth = load_transitions(source_id), load_transitions(subset.spec.dataset_id)
    assert len(tenth.obs) == 60
    np.testing.assert_array_equal(tenth.obs[:30], full.obs[:30])      # the medium part's first tenth
    np.testing.assert_array_equal(tenth.obs[30:], full.obs[300:330])  # the expert part's first tenth
    np.testing.assert_array_equal(tenth.rewards[30:], full.rewards[300:330])
    assert tenth.timeouts[29] or tenth.terminals[29]  # the medium part ends there
    record = json.loads(subset.storage.metadata["dynshift"])
    assert record["request"]["subset_of"] == source_id and record["request"]["fraction"] == 0.1
    assert record["request"]["segments"] == [["medium", 30], ["expert", 30]]
    row = next(r for r in list_datasets(subset.spec.dataset_id))
    assert row["transitions"] == 60 and row["kind"] == "medium-expert"
    assert first_fraction(source_id, 0.1).spec.dataset_id == subset.spec.dataset_id  # made once, then reused
    with pytest.raises(ValueError, match=r"fraction must be a number in \(0, 1\)"):
        first_fraction(source_id, 1.5)


def test_source_data_from_policies_trained_on_the_source_robot(store, monkeypatch):
    """``policies="own"`` collects with the policy set shipped for that shifted robot (here a stand-in
    set whose 'medium' is the nominal expert's file, so the data must differ), under its own id and
    recorded; a set that is not shipped is an error naming the commands that make it."""
    import copy
    import json

    import dynshift_agents.behaviour as behaviour
    from dynshift_agents.data import collect, load_transitions

    shift = {"mass": 1.5}
    table = copy.deepcopy(behaviour._index_file())
    expert_file = next(p["file"] for p in table["policies"] if p["robot"] == "hopper" and p["name"] == "expert")
    table["policies"] += [dict(p, shift=shift, file=expert_file) for p in table["policies"]
                          if p["robot"] == "hopper" and p["name"] == "medium"]
    monkeypatch.setattr(behaviour, "_index_file", lambda: table)
    assert behaviour.policy_info("hopper", "medium", shift).file == expert_file
    own = collect("hopper", "medium", size=400, seed=3, env_kwargs=shift, policies="own", progress=False)
    plain = collect("hopper", "medium", size=400, seed=3, env_kwargs=shift, progress=False)
    assert own.spec.dataset_id == "dynshift/hopper/medium-mass1p5-own-v0"
    assert plain.spec.dataset_id == "dynshift/hopper/medium-mass1p5-v0"
    own_request = json.loads(own.storage.metadata["dynshift"])["request"]
    assert own_request["policies_trained_on"] == shift and own_request["policies"]["medium"]["file"] == expert_file
    assert "policies_trained_on" not in json.loads(plain.storage.metadata["dynshift"])["request"]
    assert not np.array_equal(load_transitions(own.spec.dataset_id).actions, load_transitions(plain.spec.dataset_id).actions)
    with pytest.raises(ValueError, match=r"train them with `python scripts/train_behaviour.py hopper --env-kwargs"):
        collect("hopper", "medium", size=400, env_kwargs={"mass": 2.0}, policies="own", progress=False)
    with pytest.raises(ValueError, match="policies='own' is for a shifted robot"):
        collect("hopper", "medium", size=400, policies="own", progress=False)


def test_the_diagnostics_tell_a_reward_change_of_the_state_from_one_of_the_action(script):
    """``scripts/dara_diagnostics.py``'s R² of Δr on s: near 1 for a function of s, near 0 for one of a."""
    torch.set_num_threads(1)
    diagnostics = script("dara_diagnostics")
    rng = np.random.default_rng(0)
    obs, actions = rng.normal(size=(4000, 3)), rng.normal(size=4000)
    assert diagnostics.state_r2(obs, np.sin(obs[:, 0]) + obs[:, 1] ** 2, steps=1500) > 0.9
    assert abs(diagnostics.state_r2(obs, actions, steps=1500)) < 0.1


def test_the_diagnostics_read_a_dara_run_of_awr_and_of_iql(tiny, tmp_path, capsys, script):
    from dynshift_agents import cli
    from dynshift_agents.data import collect

    diagnostics = script("dara_diagnostics")
    target_id, _ = tiny
    source_id = collect("halfcheetah", "random", size=3000, seed=1, env_kwargs={"mass": 1.5},  # returns beside the target's
                        progress=False).spec.dataset_id
    for base in ("awr", "iql"):
        cli.main(["train", "dara", "--base", base, "--target-dataset", target_id, "--source-dataset", source_id,
                  "--out", str(tmp_path / base), "--no-progress", "--gradient-steps", "100", "--set",
                  "net_arch=[16,16]", "--set", "batch_size=32", "--dara-set", "steps=100", "--dara-set", "hidden=[16]"])
        capsys.readouterr()
        diagnostics.main([str(tmp_path / base)])
        out = capsys.readouterr().out
        assert "held-out R² of Δr on s alone" in out and "overlap: q_sa(src) > 0.95" in out, out
        share = float(out.split("source share of the total ")[1].split()[0])
        assert 0 < share < 1, out
        assert "V(s) in env reward units: mean on source rows" in out, out
    # IQL's reward scale is saved: the union's (DARA relabels rewards, not the episode returns it comes
    # from), not the target's; a checkpoint written before it was saved recomputes the same
    from dynshift_agents.algorithms import load
    from dynshift_agents.algorithms.iql import reward_scale
    from dynshift_agents.data.transitions import concatenate, load_transitions

    target, source = load_transitions(target_id), load_transitions(source_id)
    union = reward_scale(concatenate(target, source))
    assert union != reward_scale(target)
    agent = load(tmp_path / "iql")
    assert agent.reward_units() == union
    agent.load_json_state({})
    assert agent.reward_scale is None and agent.reward_units() == union
    assert load(tmp_path / "awr").reward_units() == 1.0


def test_the_same_seed_gives_the_same_classifiers_whatever_the_rng_state_before():
    """The classifiers' initialisation is drawn in ``fit`` from its seed (it was drawn from the global
    RNG when the object was built, which differs between processes)."""
    source, target = dynamics(2000, 1.0, 0), dynamics(2000, 0.5, 1)
    fitted = []
    for state in (1, 2):
        torch.manual_seed(state)
        dara = DARA(1, 1, DARAConfig(hidden=(16,), steps=20))
        dara.fit(source, target, seed=3)
        fitted.append(dara)
    for first, second in zip(fitted[0].q_sas.state_dict().values(), fitted[1].q_sas.state_dict().values()):
        assert torch.equal(first, second)
    np.testing.assert_array_equal(fitted[0].delta_r(source), fitted[1].delta_r(source))

"""Datasets: collection into Minari's format, flat transitions, scores, errors, resuming."""

from __future__ import annotations

import hashlib

import json

import gymnasium as gym
import minari
import numpy as np
import pytest

from dynshift_agents import cli
from dynshift_agents.behaviour import index, references
from dynshift_envs import ROBOTS
from dynshift_agents.data import (
    DatasetNotFoundError,
    collect,
    d4rl_score,
    dataset_id_for,
    dataset_score,
    list_datasets,
    load_transitions,
    normalised_score,
    plan,
)
from dynshift_agents.data import collection as collect_module


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    """Every test gets its own empty Minari store."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def episodes_of(dataset):
    return list(dataset.iterate_episodes())


@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_random_dataset_replays_exactly_in_the_recovered_env(robot):
    """Every recorded episode is what the recovered env does from its recorded seed and actions."""
    dataset = collect(robot, "random", size=1200, seed=3, progress=False)
    assert dataset.spec.dataset_id == f"dynshift/{robot}/random-v0"
    assert minari.load_dataset(dataset.spec.dataset_id).total_steps == 1200  # Minari's own loader
    env = dataset.recover_environment()
    assert env.spec.id == ROBOTS[robot].env_id
    metadata = dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    for episode, meta in zip(episodes_of(dataset), metadata):
        obs, _ = env.reset(seed=int(meta["seed"]))
        np.testing.assert_array_equal(obs, episode.observations[0])
        for t, action in enumerate(episode.actions):
            obs, reward, terminated, truncated, _ = env.step(action)
            np.testing.assert_array_equal(obs, episode.observations[t + 1])
            assert reward == episode.rewards[t]
            assert terminated == episode.terminations[t]
            if t < len(episode.actions) - 1:
                assert not (terminated or truncated)
        # the episode ended: by the env, or (the last one) by the dataset's size, as a truncation
        assert episode.terminations[-1] or episode.truncations[-1]


def test_transitions_are_consistent_within_episodes():
    dataset = collect("hopper", "random", size=3000, seed=0, progress=False)
    data = load_transitions(dataset.spec.dataset_id)
    assert len(data) == 3000
    assert data.obs.dtype == np.float32 and data.obs.shape == (3000, 11) and data.actions.shape == (3000, 3)
    ends = data.terminals | data.timeouts
    # within an episode the next observation is the following row's observation
    np.testing.assert_array_equal(data.next_obs[:-1][~ends[:-1]], data.obs[1:][~ends[:-1]])
    # random hopper episodes end by falling: terminals where the hopper is unhealthy, never elsewhere
    assert data.terminals.sum() > 50
    z, angle = data.next_obs[:, 0], data.next_obs[:, 1]
    unhealthy = (z <= 0.7) | (np.abs(angle) >= 0.2) | (np.abs(data.next_obs[:, 1:]) >= 100).any(axis=1)
    np.testing.assert_array_equal(data.terminals, unhealthy)
    assert data.timeouts.sum() == 1 and data.timeouts[-1]  # the size cut
    assert np.isclose(data.episode_returns.sum(), data.rewards.sum(dtype=np.float64), rtol=1e-5)


def test_halfcheetah_episodes_end_in_timeouts():
    data = load_transitions(collect("halfcheetah", "random", size=2500, progress=False).spec.dataset_id)
    assert not data.terminals.any()
    np.testing.assert_array_equal(np.flatnonzero(data.timeouts), [999, 1999, 2499])


@pytest.mark.parametrize(
    "robot, kwargs, name",
    [
        ("halfcheetah", {"mass": 1.5, "damping": 0.5}, "random-mass1p5-damping0p5-v0"),
        ("ant", {"crippled_legs": [3]}, "random-crippled3-v0"),
        ("halfcheetah", {"morphology": "big"}, "random-big-v0"),
        ("hopper", {"friction": {"floor": 0.1}}, "random-friction_floor0p1-v0"),
        ("walker2d", {"joint_range": {"foot_joint": 0.5}, "mass": 1.25}, "random-mass1p25-range_foot_joint0p5-v0"),
        ("ant", {"joint_range": 0.5}, "random-range0p5-v0"),
        ("hopper", {"morphology": "small"}, "random-small-v0"),
        ("walker2d", {"morphology": {"thigh": 1.5, "foot_left": 0.8}}, "random-morph_foot_left0p8-morph_thigh1p5-v0"),
    ],
)
def test_shifted_dataset_records_and_recovers_its_dynamics(robot, kwargs, name):
    dataset = collect(robot, "random", size=600, env_kwargs=kwargs, progress=False)
    assert dataset.spec.dataset_id == f"dynshift/{robot}/{name}"
    recovered = dataset.recover_environment().unwrapped
    reference = gym.make(ROBOTS[robot].env_id, **kwargs).unwrapped
    for field in ("body_mass", "body_inertia", "dof_damping", "actuator_gear", "geom_size", "body_pos", "jnt_range",
                  "geom_friction", "pair_friction", "pair_geom1", "pair_geom2", "geom_contype"):
        np.testing.assert_array_equal(getattr(recovered.model, field), getattr(reference.model, field))
    record = json.loads(dataset.storage.metadata["dynshift"])
    assert record["request"]["env_kwargs"] == kwargs
    data = load_transitions(dataset.spec.dataset_id)
    expected = reference.context_vector(reference.dynamics)
    np.testing.assert_array_equal(data.dynamics, np.broadcast_to(expected.astype(data.dynamics.dtype), data.dynamics.shape))


def test_a_mid_episode_switch_shows_in_the_per_step_dynamics():
    schedule = [{"step": 100, "mass": 0.75, "damping": 0.5}]
    dataset = collect("halfcheetah", "random", size=1000, env_kwargs={"schedule": schedule}, progress=False)
    assert dataset.spec.dataset_id.startswith("dynshift/halfcheetah/random-shift")
    dynamics = load_transitions(dataset.spec.dataset_id).dynamics
    np.testing.assert_array_equal(dynamics[:100], np.tile([1.0, 1.0], (100, 1)))
    np.testing.assert_array_equal(dynamics[100:], np.tile([0.75, 0.5], (900, 1)))


def test_same_seed_same_dataset_other_seed_other_dataset():
    a = load_transitions(collect("hopper", "random", size=500, seed=1, progress=False).spec.dataset_id)
    b = load_transitions(collect("hopper", "random", size=500, seed=1, dataset_id="test/b-v0", progress=False).spec.dataset_id)
    c = load_transitions(collect("hopper", "random", size=500, seed=2, dataset_id="test/c-v0", progress=False).spec.dataset_id)
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.actions, c.actions)


MEDIUM_DIGEST = "a2ec46a9d7d1a3b2adf0d90e2fee83b92039a8e962f683961970a65f6c29b5c7"
"""SHA-256 of the observations and actions of ``collect("hopper", "medium", size=2000, seed=0)``, first
computed on an Intel Xeon (AMX) with torch 2.13.0 and mujoco 4.0."""


def test_a_collection_is_the_same_on_every_cpu():
    """The stochastic SAC behaviour, hashed: the data must not depend on the CPU's matrix kernels
    (SB3's float32 batched predict made another hopper dataset on an AMD EPYC than on an Intel Xeon).
    The digest was computed on an Intel Xeon (AMX) and holds on an AMD EPYC (Zen 4) too (2026-12-02,
    where the full hopper medium collection also gave the Intel one's returns, 1482.7 ± 794.9). If this
    fails on a new kind of machine, collection is not CPU-independent there: compare where the two
    datasets first differ before changing the digest."""
    data = load_transitions(collect("hopper", "medium", size=2000, seed=0, progress=False).spec.dataset_id)
    assert hashlib.sha256(data.obs.tobytes() + data.actions.tobytes()).hexdigest() == MEDIUM_DIGEST


def test_an_interrupted_collection_leaves_nothing_and_resumes_to_the_same_dataset(monkeypatch, store):
    monkeypatch.setattr(collect_module, "CHUNK_STEPS", 400)
    reference = load_transitions(collect("hopper", "random", size=2000, seed=5, dataset_id="test/whole-v0",
                                         progress=False).spec.dataset_id)
    real_run = collect_module.run_episodes
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_run(*args, **kwargs)

    monkeypatch.setattr(collect_module, "run_episodes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        collect("hopper", "random", size=2000, seed=5, progress=False)
    assert "dynshift/hopper/random-v0" not in minari.list_local_datasets()
    assert not (store / "dynshift" / "hopper" / "random-v0").exists()
    staged = list((store / ".dynshift-partial").rglob("*.npz"))
    assert staged and not any(".tmp" in p.name for p in staged)

    monkeypatch.setattr(collect_module, "run_episodes", real_run)
    resumed = load_transitions(collect("hopper", "random", size=2000, seed=5, progress=False).spec.dataset_id)
    for field in ("obs", "actions", "rewards", "next_obs", "terminals", "timeouts", "dynamics"):
        np.testing.assert_array_equal(getattr(resumed, field), getattr(reference, field))
    assert not (store / ".dynshift-partial").exists()


def test_existing_dataset_is_reused_and_other_settings_are_refused():
    first = collect("hopper", "random", size=300, progress=False)
    again = collect("hopper", "random", size=300, progress=False)
    assert again.spec.dataset_id == first.spec.dataset_id
    with pytest.raises(FileExistsError, match="overwrite"):
        collect("hopper", "random", size=400, progress=False)
    assert collect("hopper", "random", size=400, overwrite=True, progress=False).total_steps == 400


def test_missing_dataset_names_the_command_that_makes_it():
    with pytest.raises(DatasetNotFoundError, match=r"dynshift collect walker2d medium"):
        load_transitions("dynshift/walker2d/medium-v0")
    with pytest.raises(DatasetNotFoundError, match="nothing is downloaded"):
        load_transitions("mujoco/halfcheetah/medium-v0")


def test_corrupt_dataset_is_a_clear_error(store):
    dataset_id = collect("hopper", "random", size=300, progress=False).spec.dataset_id
    data_file = store / dataset_id / "data" / "main_data.hdf5"
    data_file.write_bytes(data_file.read_bytes()[:2000])
    with pytest.raises(OSError, match="unreadable.*collect"):
        load_transitions(dataset_id)


def test_scores():
    assert normalised_score(-10.0, random=-10.0, expert=90.0) == 0.0
    assert normalised_score(90.0, random=-10.0, expert=90.0) == 100.0
    np.testing.assert_allclose(d4rl_score("hopper", [-20.272305, 3234.3]), [0.0, 100.0])
    assert d4rl_score("DynShift/HalfCheetah-v0", 12135.0) == pytest.approx(100.0)
    dataset = collect("halfcheetah", "random", size=300, env_kwargs={"mass": 1.5}, progress=False)
    ref = references("halfcheetah")
    assert dataset_score(dataset, ref["random"]) == pytest.approx(0.0)
    assert dataset_score(dataset, ref["expert"]) == pytest.approx(100.0)
    # Minari's own normaliser sees the same references (as a fraction)
    assert minari.get_normalized_score(dataset, np.array([ref["expert"]]))[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal"):
        normalised_score(1.0, random=2.0, expert=2.0)


def test_dataset_ids_and_bad_arguments():
    assert dataset_id_for("halfcheetah", "medium") == "dynshift/halfcheetah/medium-v0"
    assert dataset_id_for("hopper", "mixed", {"damping": 0.25, "mass": 1.75}) == "dynshift/hopper/mixed-mass1p75-damping0p25-v0"
    assert dataset_id_for("halfcheetah", "expert", {"mass": 1.0, "morphology": "default"}) == "dynshift/halfcheetah/expert-v0"
    tagged = dataset_id_for("walker2d", "random", {"mass": {"torso": 2.0}})
    assert tagged.startswith("dynshift/walker2d/random-shift") and tagged == dataset_id_for("walker2d", "random", {"mass": {"torso": 2.0}})
    minari.dataset.minari_dataset.parse_dataset_id(tagged)  # a valid Minari id
    with pytest.raises(ValueError, match="random, medium, mixed, medium-expert, expert"):
        collect("hopper", "replay", progress=False)
    with pytest.raises(ValueError, match="halfcheetah"):
        collect("cheetah", "random", progress=False)
    with pytest.raises(ValueError, match="mass"):
        collect("hopper", "random", env_kwargs={"mass": -1.0}, progress=False)
    with pytest.raises(ValueError, match="context_in_obs"):
        collect("hopper", "random", env_kwargs={"context_in_obs": True}, progress=False)
    with pytest.raises(ValueError, match="positive"):
        collect("hopper", "random", size=0, progress=False)


@pytest.mark.parametrize("robot", sorted(ROBOTS))
def test_plans(robot):
    assert plan(robot, "medium-expert", 1001) == [collect_module.Segment("medium", 500), collect_module.Segment("expert", 501)]
    segments = plan(robot, "mixed", 50_000)
    assert sum(s.steps for s in segments) == 50_000
    assert segments[0].policy == "random"
    steps = [index()[robot][s.policy].steps for s in segments[1:]]
    assert steps == sorted(steps) and steps[-1] < index()[robot]["medium"].steps
    natural = plan(robot, "mixed", None)
    assert sum(s.steps for s in natural) == index()[robot]["medium"].steps
    diverse = plan(robot, "diverse", 30_000)  # a third random, a third the replay, a third expert
    assert sum(s.steps for s in diverse) == 30_000
    assert diverse[0].policy == "random" and diverse[-1] == collect_module.Segment("expert", 10_000)
    replay = plan(robot, "mixed", 10_000)
    assert diverse[1:-1] == replay[1:] and diverse[0].steps == 10_000 + replay[0].steps


def test_command_line(capsys):
    cli.main(["collect", "halfcheetah", "random", "--size", "500", "--mass", "0.5", "--seed", "2"])
    assert "dynshift/halfcheetah/random-mass0p5-v0: 500 transitions" in capsys.readouterr().out
    cli.main(["datasets"])
    out = capsys.readouterr().out
    assert "dynshift/halfcheetah/random-mass0p5-v0" in out and '{"mass": 0.5}' in out
    cli.main(["datasets", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert rows == list_datasets() and rows[0]["transitions"] == 500
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["collect", "halfcheetah", "nonsense"])
    assert exit_info.value.code == 2 and "invalid choice: 'nonsense'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["collect", "ant", "random", "--crippled-legs", "9"])
    assert exit_info.value.code == 2
    assert "crippled" in capsys.readouterr().err


def test_minari_datasets_made_elsewhere_load_too():
    """A dataset in the layout of Minari's own mujoco/* datasets (v5 env, no dynamics infos)."""
    from minari.data_collector.episode_buffer import EpisodeBuffer

    from dynshift_agents.experiment import dataset_env

    env = gym.make("HalfCheetah-v5")
    obs, _ = env.reset(seed=0)
    observations, actions, rewards = [obs], [], []
    for _ in range(50):
        action = env.action_space.sample()
        obs, reward, *_ = env.step(action)
        observations.append(obs), actions.append(action), rewards.append(reward)
    episode = EpisodeBuffer(id=0, observations=np.array(observations), actions=np.array(actions), rewards=rewards,
                            terminations=[False] * 50, truncations=[False] * 49 + [True])
    minari.create_dataset_from_buffers("mujoco/halfcheetah/medium-v0", [episode], env=env, algorithm_name="test",
                                       author="test", author_email="test", code_permalink="test", description="test")
    data = load_transitions("mujoco/halfcheetah/medium-v0")
    assert len(data) == 50 and data.dynamics is None
    np.testing.assert_array_equal(data.next_obs[:-1], data.obs[1:])
    assert dataset_env("mujoco/halfcheetah/medium-v0") == ("DynShift/HalfCheetah-v0", {})


def test_ant_without_contact_forces_records_what_the_same_behaviour_does():
    """Observation keywords change what is recorded, not how the shipped policy acts: the same seed
    gives the same actions, and observations that are the full ones without the 84 contact forces."""
    full = collect("ant", "medium", size=300, seed=4, progress=False)
    kwargs = {"include_cfrc_ext_in_observation": False}
    truncated = collect("ant", "medium", size=300, seed=4, progress=False, env_kwargs=kwargs)
    assert truncated.spec.dataset_id == dataset_id_for("ant", "medium", kwargs) == "dynshift/ant/medium-nocontact-v0"
    a, b = load_transitions(full.spec.dataset_id), load_transitions(truncated.spec.dataset_id)
    assert a.obs.shape == (300, 105) and b.obs.shape == (300, 27)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.obs[:, :27], b.obs)
    np.testing.assert_array_equal(a.next_obs[:, :27], b.next_obs)
    assert truncated.recover_environment().observation_space.shape == (27,)


def test_a_relative_store_path_works(monkeypatch, tmp_path):
    """`MINARI_DATASETS_PATH=runs/store dynshift collect ...` (docs/datasets.md's own command)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", "runs/store")
    dataset = collect("hopper", "random", size=300, progress=False)
    assert dataset.total_steps == 300
    assert (tmp_path / "runs" / "store" / "dynshift" / "hopper" / "random-v0").is_dir()
    assert load_transitions("dynshift/hopper/random-v0").obs.shape == (300, 11)


def test_shift_options_of_the_command_line():
    """`--friction` and `--joint-range` take one number or NAME=K pairs; anything else exits with
    the expected forms named."""
    from dynshift_agents.cli import build_parser, shift_kwargs

    def kwargs(*options):
        return shift_kwargs(build_parser().parse_args(["collect", "hopper", "random", *options]))

    assert kwargs("--friction", "0.5", "--joint-range", "0.75") == {"friction": 0.5, "joint_range": 0.75}
    assert kwargs("--friction", "floor=0.1", "foot_geom=2", "--joint-range", "foot_joint=0.5") == {
        "friction": {"floor": 0.1, "foot_geom": 2.0}, "joint_range": {"foot_joint": 0.5}}
    assert kwargs("--morphology", "big") == {"morphology": "big"}
    assert kwargs("--morphology", "thigh=1.5", "foot=0.8") == {"morphology": {"thigh": 1.5, "foot": 0.8}}
    with pytest.raises(SystemExit, match="--joint-range: give one number K, or NAME=K pairs, got 0.5 0.7"):
        kwargs("--joint-range", "0.5", "0.7")
    with pytest.raises(SystemExit, match="--friction: 'slippery' is not a number"):
        kwargs("--friction", "floor=slippery")


@pytest.mark.parametrize("dataset_id", ["dynshift/hopper/medium", "my data-v0", "dynshift/hopper/medium-vX"])
def test_a_malformed_dataset_id_is_refused_before_collecting(dataset_id, monkeypatch):
    from dynshift_agents.data import collection

    monkeypatch.setattr(collection, "plan", lambda *a, **k: pytest.fail("collected before checking the id"))
    with pytest.raises(ValueError, match="is not of Minari's form"):
        collect("hopper", "random", size=100, dataset_id=dataset_id, progress=False)

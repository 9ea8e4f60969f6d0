"""FB: its losses against a direct computation, the successor measure of a small chain learnt
exactly enough, task inference, and the agent's train / infer / save / load / predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynshift_agents.algorithms.fb import FB, FBConfig, ForwardBackward, fb_loss, orthonormality_loss, sphere


def test_fb_loss_against_a_direct_computation():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(2, 4, 4))
    target = rng.normal(size=(4, 4))
    expected = 0.0
    for i in range(2):
        off = [(m[i, j, k] - target[j, k]) ** 2 for j in range(4) for k in range(4) if j != k]
        expected += 0.5 * np.mean(off) - np.mean([m[i, j, j] for j in range(4)])
    assert fb_loss(torch.as_tensor(m), torch.as_tensor(target)).item() == pytest.approx(expected, rel=1e-12)


def test_orthonormality_loss_against_a_direct_computation():
    b = np.random.default_rng(1).normal(size=(5, 3))
    c = b @ b.T
    expected = -2 * np.mean(np.diag(c)) + np.mean([c[j, k] ** 2 for j in range(5) for k in range(5) if j != k])
    assert orthonormality_loss(torch.as_tensor(b)).item() == pytest.approx(expected, rel=1e-12)
    # orthonormal rows (C = I) are its minimum among rows of unit norm
    assert orthonormality_loss(torch.eye(3)).item() == pytest.approx(-2.0)


def test_the_successor_measure_of_a_chain_is_learnt():
    """A cycle of n one-hot states under a fixed policy (always the next state): F(s)ᵀB(s⁺)·ρ(s⁺) must
    approach M = Σ_t γ^t P^{t+1} = (I − γP)⁻¹P, computed exactly, with ρ uniform (the data's
    next-state distribution)."""
    n, gamma, steps = 6, 0.5, 2500
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = FBConfig(z_dim=n, forward_hidden=(64,), forward_embedding=32, head_hidden=(64,), backward_hidden=(64,))
    net, target = ForwardBackward(n, 1, config), ForwardBackward(n, 1, config)
    target.load_state_dict(net.state_dict())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(0.6 * steps), int(0.85 * steps)], 0.1)
    states = torch.eye(n)
    successor = torch.roll(states, -1, dims=0)
    z = sphere(torch.ones(1, n))
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        rows = torch.randint(n, (128,), generator=generator)
        zeros = torch.zeros(128, 1)
        loss_fb, loss_orth = net.losses(states[rows], zeros, successor[rows], zeros, z.expand(128, -1), target, gamma)
        optimizer.zero_grad()
        (loss_fb + loss_orth).backward()
        optimizer.step()
        schedule.step()  # a decaying step: Adam's noise floor would otherwise stay near 0.07
        with torch.no_grad():
            torch._foreach_lerp_(list(target.parameters()), list(net.parameters()), 0.05)
    p = successor.numpy().astype(np.float64)  # P[s, s'] = 1 for s' the next state of s
    exact = np.linalg.solve(np.eye(n) - gamma * p, p)
    with torch.no_grad():
        f = net.forward_heads(states, torch.zeros(n, 1), z.expand(n, -1))
        learnt = (torch.minimum(f[0] @ net.backward_rep(states).T, f[1] @ net.backward_rep(states).T) / n).numpy()
    assert np.abs(learnt - exact).max() < 0.03, np.round(learnt - exact, 3)  # entries 0.03–1.02; measured 0.0095


def _agent(data, dataset_id=None, **overrides) -> FB:
    config = FBConfig(**dict(z_dim=8, batch_size=32, forward_hidden=(16,), forward_embedding=16, head_hidden=(16,),
                             backward_hidden=(16,), actor_hidden=(16,), inference_samples=500) | overrides)
    return FB("DynShift/HalfCheetah-v0", data, config, seed=0, dataset_id=dataset_id)


def test_task_inference_points_the_right_way_and_has_norm_sqrt_d(tiny):
    _, data = tiny
    agent = _agent(data)
    with torch.no_grad():
        b = agent.fb.backward_rep(torch.as_tensor(agent.encoder(data.next_obs))).numpy()
    w = np.random.default_rng(0).normal(size=8)
    z = agent.infer_z(data.next_obs, b @ w).numpy()  # a reward that is a linear function of B
    assert np.linalg.norm(z) == pytest.approx(np.sqrt(8), rel=1e-5)
    expected = b.T @ (b @ w) / len(b)  # z ∝ Cov_B · w: the right side of every hyperplane through 0
    assert np.dot(z, expected) / (np.linalg.norm(z) * np.linalg.norm(expected)) == pytest.approx(1.0, abs=1e-5)
    assert np.dot(z, w) > 0
    assert np.linalg.norm(agent.infer_z(data.next_obs, -3.0 * (b @ w)).numpy() + z) < 1e-4  # r → −3r: z → −z


def test_fb_trains_infers_saves_loads_and_predicts_identically(tiny, tmp_path):
    from dynshift_agents.algorithms import load

    _, data = tiny
    agent = _agent(data)
    agent.learn(300, log_dir=tmp_path, progress_bar=False, checkpoint_dir=tmp_path / "checkpoint", checkpoint_every=100)
    assert agent.gradient_steps == 300 and torch.linalg.norm(agent.z).item() == pytest.approx(np.sqrt(8), rel=1e-5)
    z_data = agent.z.clone()
    assert torch.equal(agent.infer_z(data.next_obs, data.rewards, samples=500), z_data)  # the data's own task
    again = load(tmp_path)
    assert again.name == "fb" and torch.equal(again.z, agent.z)
    obs = data.obs[:7]
    np.testing.assert_array_equal(again.predict(obs)[0], agent.predict(obs)[0])
    low, high = agent.action_space.low, agent.action_space.high
    actions = agent.predict(obs)[0]
    assert actions.shape == (7, 6) and np.all(actions >= low) and np.all(actions <= high)
    twin = _agent(data)
    twin.learn(100, progress_bar=False)
    first = _agent(data)
    first.learn(100, progress_bar=False)
    np.testing.assert_array_equal(twin.predict(obs)[0], first.predict(obs)[0])  # same seed, same training


def test_the_input_layer_is_layer_normalised_and_older_checkpoints_load_as_they_were_trained(tiny, tmp_path):
    """Linear → LayerNorm → tanh opens F's branches, B and the actor (the public networks); a checkpoint
    written before ``input_layer_norm`` existed (its agent.json lacks the field) was a plain ReLU MLP and
    loads as one, predicting as it did."""
    import json

    from dynshift_agents.algorithms import load

    _, data = tiny
    agent = _agent(data)
    for net in (agent.fb.sa, agent.fb.sz, agent.fb.backward_net, agent.actor.net):
        assert [type(m).__name__ for m in net[:3]] == ["Linear", "LayerNorm", "Tanh"]
    assert not any(isinstance(m, torch.nn.LayerNorm) for head in agent.fb.heads for m in head)
    plain = _agent(data, input_layer_norm=False)
    plain.learn(100, progress_bar=False, checkpoint_dir=tmp_path / "plain")
    meta = json.loads((tmp_path / "plain" / "agent.json").read_text())
    del meta["config"]["input_layer_norm"]
    (tmp_path / "plain" / "agent.json").write_text(json.dumps(meta))
    again = load(tmp_path / "plain")
    assert again.config.input_layer_norm is False
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in again.actor.net)
    np.testing.assert_array_equal(again.predict(data.obs[:5])[0], plain.predict(data.obs[:5])[0])


def test_contextual_inference_modes_and_identical_robots(tiny, tmp_path, capsys):
    """(a) the training data's rewards, (b) the test data's, (c) the training data's plus ΔR; with
    identical train and test data ΔR ≈ 0 and (c) equals (a)."""
    from dynshift_agents import cli
    from dynshift_agents.adaptation import DARAConfig, infer_task
    from dynshift_agents.adaptation.contextual import cosine
    from dynshift_agents.algorithms import describe, load

    dataset_id, data = tiny
    agent = _agent(data, dataset_id)
    agent.learn(100, progress_bar=False, checkpoint_dir=tmp_path / "fb")
    z_a, _ = infer_task(agent, "train", data)
    z_b, _ = infer_task(agent, "test", data, data)
    assert torch.allclose(z_a, z_b)  # the same data: the same z
    z_c, report = infer_task(agent, "contextual", data, data, dara_config=DARAConfig(steps=300, hidden=(32,)))
    # ΔR ≈ 0: within 5 % of the typical reward (the classifiers see the same rows under both labels)
    assert abs(report["delta_R"]["mean"]) < 0.05 * np.abs(data.rewards).mean()
    assert report["classifiers"]["sas_accuracy"] < 0.6
    assert cosine(z_c, z_a) > 0.99 and torch.linalg.norm(z_c).item() == pytest.approx(np.sqrt(8), rel=1e-5)
    with pytest.raises(ValueError, match="needs the test robot's data"):
        infer_task(agent, "contextual", data)
    cli.main(["fb-task", str(tmp_path / "fb"), "--mode", "contextual", "--test-dataset", dataset_id,
              "--dara-set", "steps=100", "--dara-set", "hidden=[16]", "--out", str(tmp_path / "fb-test")])
    assert "fb task by contextual" in capsys.readouterr().out
    tasked = load(tmp_path / "fb-test")
    assert describe(tmp_path / "fb-test")["provenance"]["task"]["test_dataset"] == dataset_id
    assert cosine(tasked.z, z_a) > 0.9


def test_a_grid_infers_the_task_per_setting_from_that_settings_data(tiny, tmp_path, capsys):
    import json

    from dynshift_agents import cli
    from dynshift_agents.algorithms import describe, load
    from dynshift_agents.data import collect
    from dynshift_agents.evaluation import read_records

    dataset_id, data = tiny
    agent = _agent(data, dataset_id)
    agent.learn(100, progress_bar=False, checkpoint_dir=tmp_path / "fb")
    settings = [{"mass": 0.5}, {"mass": 1.5}]
    (tmp_path / "grid.json").write_text(json.dumps(settings))
    grid = ["grid", str(tmp_path / "fb"), "--grid", str(tmp_path / "grid.json"), "--episodes", "1", "--workers", "1",
            "--names", "fb", "--out", str(tmp_path / "out"), "--fb-task", "contextual",
            "--fb-dara-set", "steps=50", "--fb-dara-set", "hidden=[16]", "--fb-test-size", "300"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(grid)
    assert exit_info.value.code == 2
    assert ("dynshift collect halfcheetah medium --size 300 --dataset-id dynshift/halfcheetah/medium-mass0p5-n300-v0 "
            "--env-kwargs '{\"mass\": 0.5}'") in capsys.readouterr().err
    for setting in settings:
        collect("halfcheetah", "medium", size=300, seed=2, env_kwargs=setting, progress=False,
                dataset_id=f"dynshift/halfcheetah/medium-mass{str(setting['mass']).replace('.', 'p')}-n300-v0")
    cli.main(grid)
    records = read_records(tmp_path / "out" / "records.jsonl")
    assert sorted(r["setting_index"] for r in records) == [0, 1]
    tasks = [tmp_path / "out" / "tasks" / "fb" / f"setting{k}" for k in range(2)]
    assert describe(tasks[1])["provenance"]["task"]["test_dataset"] == "dynshift/halfcheetah/medium-mass1p5-n300-v0"
    assert not torch.equal(load(tasks[0]).z, load(tasks[1]).z)  # one task per robot


def test_the_diagnostics_script_reads_a_reward_that_b_spans_and_q_in_reward_units(tiny, tmp_path, capsys, script):
    """``scripts/fb_diagnostics.py``: a reward that is a linear function of B(s') is spanned (R² = 1) and
    z points along E[r B]; Q_r is F(s, a, z)ᵀ E[r B] (min over the heads); a real episode is run."""
    import dataclasses

    dataset_id, data = tiny
    script = script("fb_diagnostics")
    agent = _agent(data, dataset_id)
    agent.learn(100, progress_bar=False, checkpoint_dir=tmp_path / "fb")
    with torch.no_grad():
        b = agent.fb.backward_rep(torch.as_tensor(agent.encoder(data.next_obs))).numpy()
    linear = dataclasses.replace(data, rewards=(b @ np.random.default_rng(0).normal(size=8)).astype(np.float32))
    agent.infer_z(linear.next_obs, linear.rewards)
    reward_vector = script.representation(agent, linear, samples=1000, seed=0)
    out = capsys.readouterr().out
    assert "R² = 1.000" in out, out
    assert float(out.split("cos(z, E[r B]) = ")[1].split()[0]) > 0.99  # z from all 3 000 rows, E[r B] from 1 000
    actions = agent.actor(torch.as_tensor(agent.encoder(data.obs[:4])), agent.z.expand(4, -1)).detach()
    f = agent.fb.forward_heads(torch.as_tensor(agent.encoder(data.obs[:4])), actions, agent.z.expand(4, -1)).detach()
    expected = np.minimum(f[0].numpy() @ reward_vector.numpy(), f[1].numpy() @ reward_vector.numpy())
    np.testing.assert_allclose(script.q_values(agent, data.obs[:4], actions, reward_vector), expected, rtol=1e-5)
    script.main([str(tmp_path / "fb"), "--samples", "500", "--episodes", "1"])
    assert "episode 0 (env seed 100): return" in capsys.readouterr().out

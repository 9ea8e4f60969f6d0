"""Where AugWM's augmented next states land, what MOPO's penalty says of them, and what a
context-conditioned critic reads at each context (issue 37).

    python scripts/augwm_diagnostics.py RUN [--z 0.5 1.5 --z 0.8 1.2] [--states 2000]
    python scripts/augwm_diagnostics.py RUN/checkpoints/step_* --context-q    # AugWM-LM, along its curve

RUN is a model-based run (its world model and policy are used). From ``--states`` dataset states,
the run's stochastic policy takes one model step, as a rollout does (s, a → s' from a random elite).
For each z range, DAS gives s'_z = s + z ⊙ (s' − s), z per dimension from U(low, high), and the
script prints, beside the same for the unaugmented s' (z = 1):

- **distance to the data**: each next state's Euclidean distance to its nearest dataset state, in
  units of the dataset's per-dimension standard deviation (median and 90th percentile);
- **the penalty it would carry**: MOPO's uncertainty u (the largest, over the ensemble, norm of a
  member's predicted std) at (s'_z, π(s'_z)). A rollout never continues from s'_z: AugWM augments a
  transition when it is stored (or sampled) and the rollout goes on from the model's own s', so no
  penalty is ever computed there; the critic bootstraps from Q(s'_z, ·) all the same.

``--context-q`` (runs of a context-conditioned policy, ``context=True``; several runs or checkpoints
may be given): on the same dataset states, the first critic's Q(s, z, a) with a the dataset's action
and with a = π(s, z) (deterministic), at z = 1 (the data's own dynamics, the context the dataset rows
carry in training and the one online inference returns at nominal dynamics), at z = 1 + U(−ε, ε) per
dimension, at z ~ U(z_low, z_high) per dimension (the training distribution of model rows) and at
constant z (every dimension equal). Q is SAC's soft value in reward units. Then, for one episode
(env seed 0) at nominal dynamics and at mass and damping × 0.5 and × 1.5, the contexts online
inference (:class:`~dynshift_agents.context.OnlineContextEstimator`, as every evaluation of the policy
uses) returns after its first 100 steps: their mean, median |z − 1| and median spread across the
dimensions (the standard deviation of one z's entries; about 0.29 for z ~ U(0.5, 1.5)).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from dynshift_agents.algorithms import load
from dynshift_agents.algorithms.augwm import das
from dynshift_agents.algorithms.mopo import mopo_uncertainty
from dynshift_agents.data import load_transitions


def nearest_distance(points: np.ndarray, data: np.ndarray, scale: np.ndarray, batch: int = 256) -> np.ndarray:
    """Distance from each point to its nearest row of ``data``, per-dimension scaled by ``scale``."""
    data = torch.as_tensor(data / scale, dtype=torch.float32)
    out = []
    for begin in range(0, len(points), batch):
        query = torch.as_tensor(points[begin:begin + batch] / scale, dtype=torch.float32)
        out.append(torch.cdist(query, data).min(1).values.numpy())
    return np.concatenate(out)


def context_q(agent, obs: torch.Tensor, actions: np.ndarray, generator: torch.Generator) -> list[tuple[str, float, float]]:
    """(context label, mean Q(s, z, a_data), mean Q(s, z, π(s, z))) over ``obs`` for a set of contexts."""
    cfg, n, d = agent.config, len(obs), obs.shape[1]
    uniform = lambda low, high: low + (high - low) * torch.rand((n, d), generator=generator)  # noqa: E731
    contexts = [("z = 1", torch.ones(n, d))]
    contexts += [(f"z = 1 + U(-{e:g}, {e:g})", uniform(1 - e, 1 + e)) for e in (0.05, 0.1, 0.25)]
    contexts += [(f"z ~ U({cfg.z_low:g}, {cfg.z_high:g}) (training)", uniform(cfg.z_low, cfg.z_high))]
    contexts += [(f"z = {c:g} in every dimension", torch.full((n, d), c)) for c in (0.75, 1.25)]
    critic, actor = agent.learner.critic, agent.learner.policy.actor
    data_actions = torch.as_tensor(agent.learner.policy.scale_action(actions), dtype=torch.float32)
    rows = []
    with torch.no_grad():
        for label, z in contexts:
            policy_obs = agent.encoder(obs, z)
            q_data = critic.q1_forward(policy_obs, data_actions).mean().item()
            q_policy = critic.q1_forward(policy_obs, actor(policy_obs, deterministic=True)).mean().item()
            rows.append((label, q_data, q_policy))
    return rows


def inferred_contexts(agent, setting: dict, skip: int = 100) -> tuple[float, dict[str, float]]:
    """One evaluation episode (env seed 0) of ``agent`` on ``setting`` with online inference: its
    return and the statistics of the contexts the policy was given after the first ``skip`` steps."""
    from dynshift_agents.evaluation import evaluate_settings

    contexts, predict = [], agent.predict

    def spy(observation, state=None, episode_start=None, deterministic=True, context=None):
        contexts.append(np.array(context))
        return predict(observation, state, episode_start, deterministic, context)

    agent.predict = spy
    try:
        record = evaluate_settings(agent, agent.env_id, [setting], episodes=1, seed=0)[0]
    finally:
        del agent.predict
    z = np.concatenate(contexts[skip:], 0)
    return record["return"], {"mean": float(z.mean()), "|z - 1| median": float(np.median(np.abs(z - 1))),
                              "spread median": float(np.median(z.std(1)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="model-based runs or checkpoint directories")
    parser.add_argument("--z", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
                        help="a z range (repeatable; default 0.5 1.5 and 0.8 1.2)")
    parser.add_argument("--states", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--context-q", action="store_true",
                        help="the critic's Q by context (context-conditioned runs) instead of the next-state table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    datasets = {}
    for run in args.runs:
        agent = load(run)
        if agent.dataset_id not in datasets:
            datasets[agent.dataset_id] = load_transitions(agent.dataset_id)
        data = datasets[agent.dataset_id]
        rows = np.random.default_rng(args.seed).choice(len(data), size=args.states, replace=False)
        obs = torch.as_tensor(data.obs[rows])
        generator = torch.Generator().manual_seed(args.seed)
        if args.context_q:
            print_context_q(run, agent, obs, data.actions[rows], generator)
        else:
            print_next_states(run, agent, data, rows, obs, args.z or [(0.5, 1.5), (0.8, 1.2)], generator)


def print_context_q(run: str, agent, obs: torch.Tensor, actions: np.ndarray, generator: torch.Generator) -> None:
    if not getattr(agent.config, "context", False):
        raise SystemExit(f"{run}: --context-q needs a context-conditioned AugWM run (context = true)")
    print(f"{run} ({agent.name}, augment={agent.config.augment!r}, {agent.gradient_steps} steps), {len(obs)} "
          f"dataset states of {agent.dataset_id}: mean Q(s, z, a)")
    print(f"  {'context':<36} {'a = dataset action':>19} {'a = pi(s, z)':>13}")
    for label, q_data, q_policy in context_q(agent, obs, actions, generator):
        print(f"  {label:<36} {q_data:>19.1f} {q_policy:>13.1f}")
    print("  contexts from online inference (one episode, env seed 0, after step 100):")
    for setting in ({}, {"mass": 0.5, "damping": 0.5}, {"mass": 1.5, "damping": 1.5}):
        episode_return, stats = inferred_contexts(agent, setting)
        values = ", ".join(f"{k} {v:.3f}" for k, v in stats.items())
        print(f"    {str(setting or 'nominal'):<30} return {episode_return:8.1f}; z {values}")


def print_next_states(run: str, agent, data, rows: np.ndarray, obs: torch.Tensor, ranges, generator) -> None:
    scale = np.maximum(data.obs.std(0), 1e-6)
    d, count = obs.shape[1], len(obs)

    def act(states: torch.Tensor) -> torch.Tensor:
        return agent._act(states, torch.arange(len(states)))

    with torch.no_grad():
        next_obs, _, _, std = agent.world_model.sample(obs, act(obs), generator=generator)
        print(f"{run} ({agent.name}, {agent.gradient_steps} steps), {count} dataset states of "
              f"{agent.dataset_id}, one model step under the run's stochastic policy")
        print(f"  penalty of the step itself (u at s, a): median {np.median(mopo_uncertainty(std).numpy()):.3f}")
        print(f"  {'next state':<22} {'distance to data: median':>25} {'p90':>7} {'u at (s_next, pi): median':>27} {'p90':>7}")
        cases = [("s' (z = 1)", next_obs)]
        for low, high in ranges:
            z = low + (high - low) * torch.rand((len(obs), d), generator=generator)
            cases.append((f"s'_z, z ~ U({low:g}, {high:g})", das(obs, next_obs, z)[1]))
        for label, states in cases:
            distance = nearest_distance(states.numpy(), data.obs, scale)
            _, _, _, std_next = agent.world_model.sample(states, act(states), generator=generator)
            u = mopo_uncertainty(std_next).numpy()
            print(f"  {label:<22} {np.median(distance):>25.2f} {np.percentile(distance, 90):>7.2f} "
                  f"{np.median(u):>27.3f} {np.percentile(u, 90):>7.3f}")
        data_distance = nearest_distance(data.obs[rows[:500]] + 0.0, np.delete(data.obs, rows[:500], 0), scale)
        print(f"  (dataset states to the rest of the dataset: median {np.median(data_distance):.2f}, "
              f"p90 {np.percentile(data_distance, 90):.2f})")


if __name__ == "__main__":
    main()

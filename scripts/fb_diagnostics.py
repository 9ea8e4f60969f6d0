"""Why an FB policy scores what it scores: what B represents of the task's reward, and F's Q against
the real returns of the policy it indexes.

    python scripts/fb_diagnostics.py runs/results/fb/dynshift__halfcheetah__diverse-v0/fb/seed0

For a trained FB run (its stored task z) and ``--samples`` transitions of its dataset (drawn with
``--seed``), it prints

- B's second moment E[B Bᵀ] over the data's next states: its eigenvalues (orthonormality asks for
  all of them at 1);
- R² of the reward regressed on B(s') by least squares: how much of the task B can express at all;
- the cosine between the run's z and E[r B(s')] (z is that vector on the sphere);
- Q_r(s, a) = F(s, a, z)ᵀ E[r B(s')] (the successor measure's Q in reward units, min over F's two
  heads) at the data's states for the policy's actions and for the data's own, and how often the
  policy's actions sit at the edge of the box;
- the policy's deterministic return over ``--episodes`` real episodes (env seeds 100, 101, …) on the
  robot its data came from, with Q_r at the visited states against the discounted Monte-Carlo return
  G_t = Σ_k γ^k r_{t+k} from there (γ = the run's).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import dynshift_envs  # noqa: F401  (registers the ids)
from dynshift_agents.algorithms import load
from dynshift_agents.data import load_transitions
from dynshift_agents.episodes import run_episodes


@torch.no_grad()
def q_values(agent, obs: np.ndarray, actions: torch.Tensor, reward_vector: torch.Tensor) -> np.ndarray:
    """min_i F_i(s, a, z)ᵀ E[r B] for the run's z, actions in [−1, 1]."""
    policy_obs = torch.as_tensor(agent.encoder(obs))
    f = agent.fb.forward_heads(policy_obs, actions, agent.z.expand(len(policy_obs), -1))
    return torch.minimum(*(f @ reward_vector)).numpy()


def representation(agent, data, samples: int, seed: int) -> torch.Tensor:
    rows = np.random.default_rng(seed).choice(len(data.rewards), min(samples, len(data.rewards)), replace=False)
    next_obs, rewards = data.next_obs[rows], data.rewards[rows].astype(np.float64)
    with torch.no_grad():
        b = agent.fb.backward_rep(torch.as_tensor(agent.encoder(next_obs))).double()
    eigenvalues = torch.linalg.eigvalsh(b.T @ b / len(b)).numpy()
    fit = torch.linalg.lstsq(b, torch.as_tensor(rewards)[:, None]).solution
    residual = rewards - (b @ fit)[:, 0].numpy()
    reward_vector = agent.reward_vector(next_obs, rewards)
    cosine = float(agent.z @ reward_vector / (agent.z.norm() * reward_vector.norm()))
    print(f"{len(rows)} transitions of {agent.dataset_id} (seed {seed})")
    print(f"  E[B Bᵀ] eigenvalues: min {eigenvalues.min():.3f}, median {np.median(eigenvalues):.3f}, "
          f"max {eigenvalues.max():.3f} (orthonormal: all 1)")
    print(f"  reward on span(B(s')): R² = {1 - residual.var() / rewards.var():.3f}")
    print(f"  cos(z, E[r B]) = {cosine:.4f}")
    obs = data.obs[rows[:2000]]
    with torch.no_grad():
        pi = agent.actor(torch.as_tensor(agent.encoder(obs)), agent.z.expand(len(obs), -1))
    q_pi = q_values(agent, obs, pi, reward_vector)
    q_data = q_values(agent, obs, agent.unit_actions(data.actions[rows[:2000]]), reward_vector)
    print(f"  Q_r at {len(obs)} data states: policy's actions {q_pi.mean():.2f}, the data's {q_data.mean():.2f}; "
          f"policy actions at the box's edge (|a| > 0.99): {float((pi.abs() > 0.99).float().mean()):.1%}")
    return reward_vector


def episodes(agent, reward_vector: torch.Tensor, count: int) -> None:
    envs = [gym.make(agent.env_id, **agent.env_kwargs) for _ in range(count)]
    runs = run_episodes(envs, [100 + episode for episode in range(count)], lambda obs, rows: agent.predict(obs)[0])
    for env in envs:
        env.close()
    for episode, run in enumerate(runs):
        q = q_values(agent, run.observations[:-1], agent.unit_actions(run.actions), reward_vector)
        g = run.discounted_returns(agent.config.gamma)
        print(f"  episode {episode} (env seed {run.seed}): return {run.total_reward:.1f}, {len(run)} steps; "
              f"Q_r {q.mean():.2f} against discounted return {g.mean():.2f} (means over visited states), "
              f"at the first state {q[0]:.2f} against {g[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="an FB run directory or its checkpoint/")
    parser.add_argument("--dataset", help="the transitions to read (default: the run's dataset)")
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent = load(args.run)
    if agent.name != "fb":
        raise SystemExit(f"{args.run} holds a {agent.name} agent; this script reads FB runs")
    data = load_transitions(args.dataset or agent.dataset_id)
    print(f"{args.run}: FB after {agent.gradient_steps} updates")
    reward_vector = representation(agent, data, args.samples, args.seed)
    episodes(agent, reward_vector, args.episodes)


if __name__ == "__main__":
    main()

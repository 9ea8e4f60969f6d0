"""A critic's Q against the real returns of its own policy: the first check when a learner's score
collapses while its Q keeps rising.

    python scripts/q_against_returns.py runs/results/model-free/dynshift__walker2d__medium-v0/td3bc/seed*

For each run (an SB3-layer agent with a critic: TD3+BC, CQL, BCQ, BEAR, BRAC-p, the model-based
agents' SAC), the deterministic policy runs ``--episodes`` real episodes (env seeds 100, 101, …) on the
robot its data came from; at every visited state it prints the mean of the first critic's
Q(s, π(s)) (in the env's reward units: divided by IQL's reward scale) and the mean discounted Monte-Carlo return G_t = Σ_k γ^k r_{t+k} of the episode from there
(γ = the agent's), and the two at the first state. Actions reach the critic scaled to [−1, 1], as in
training. For SAC-based agents Q is the soft value (it counts the entropy bonus the return lacks).

``--actor RUN`` drives the episodes with another run's policy (BC, say) and reads the same critic on
its states and actions: whether the critic ranks the behaviour it moved away from below its own.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import dynshift_envs  # noqa: F401  (registers the ids)
from dynshift_agents.algorithms import load


def q_and_returns(agent, episodes: int, actor=None) -> tuple[list[float], list[float], list[int]]:
    """Q(s, a) of ``agent``'s critic in the env's reward units and the discounted return from s, at
    every state visited by ``actor`` (by default the agent itself) with a = actor's action."""
    actor = agent if actor is None else actor
    if agent.name == "bc":
        raise SystemExit("bc trains no critic")
    critic = getattr(getattr(agent, "learner", None), "critic", None)
    if critic is None or not hasattr(critic, "q1_forward"):
        raise SystemExit(f"{agent.name} has no SB3 critic to read Q from")
    units = agent.reward_units()
    env = gym.make(agent.env_id, **agent.env_kwargs)
    gamma = agent.config.gamma
    qs, gs, lengths = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=100 + episode)
        rewards, done = [], False
        while not done:
            action = actor.predict(obs)[0]
            with torch.no_grad():
                policy_obs = torch.as_tensor(agent.encoder(obs[None]), dtype=torch.float32)
                unit = agent.learner.policy.scale_action(action[None])  # the critic's actions are in [-1, 1]
                q = critic.q1_forward(policy_obs, torch.as_tensor(unit, dtype=torch.float32))
            qs.append(float(q) / units)
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(float(reward))
            done = terminated or truncated
        g, returns = 0.0, []
        for reward in reversed(rewards):
            g = reward + gamma * g
            returns.append(g)
        gs += returns[::-1]
        lengths.append(len(rewards))
    env.close()
    return qs, gs, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run or checkpoint directories")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--actor", help="run whose policy drives the episodes (default: each run's own)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    actor = load(args.actor) if args.actor else None
    for run in args.runs:
        agent = load(run)
        qs, gs, lengths = q_and_returns(agent, args.episodes, actor)
        driver = f"; episodes by {args.actor} ({actor.name})" if actor is not None else ""
        print(f"{run} ({agent.name}, {agent.gradient_steps} steps{driver}): episode lengths {lengths}; mean Q {np.mean(qs):.1f}, "
              f"mean discounted return {np.mean(gs):.1f}; first state: Q {qs[0]:.1f}, return {gs[0]:.1f}")


if __name__ == "__main__":
    main()

"""Train the behaviour policies: SB3 SAC, online, on a DynShift robot (nominal, or shifted).

    python scripts/train_behaviour.py halfcheetah --steps 300000          # runs/behaviour/halfcheetah/
    python scripts/train_behaviour.py halfcheetah --steps 500000          # resumes, continues to 500k
    python scripts/train_behaviour.py hopper --env-kwargs '{"mass": 1.5}' # runs/behaviour/hopper@mass1p5/

A shifted robot's policies are DARA's source behaviour policies (the D4RL protocol on the source
robot): ship them with ``scripts/ship_behaviour.py ROBOT --env-kwargs ...`` and collect with
``dynshift collect ROBOT KIND --env-kwargs ... --policies own``.

The run writes, under ``--out/<robot>/``:

- ``snapshots/step_XXXXXXX.pt`` — the actor's weights every ``--snapshot-every`` env steps (a plain
  state dict, loadable with ``torch.load(..., weights_only=True)``); the medium, expert and mixed
  behaviour policies shipped in ``dynshift_agents/policies/`` are chosen from these
  (``scripts/ship_behaviour.py``);
- ``progress.csv`` — per snapshot: env steps, wall time, deterministic evaluation return (mean, std
  over ``--eval-episodes`` seeded episodes) and the mean return of the last 10 training episodes;
- ``checkpoint.zip`` + ``replay_buffer.pkl`` — the full SAC state every ``--checkpoint-every`` steps,
  written atomically, so the run resumes where it stopped (the episode in progress restarts; the
  resumed run is not bit-identical to an uninterrupted one, because RNG streams restart);
- ``train.log`` — what the run printed.

Hyperparameters are RL Baselines3 Zoo's SAC settings for MuJoCo (256×2 networks, lr 3e-4, batch 256,
γ 0.99, τ 0.005, automatic entropy, 10 000 random steps first, one gradient step per env step).
Torch uses one thread by default, so two robots can train side by side on two cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback

import dynshift_envs  # noqa: F401  (registers the ids)
from dynshift_agents.behaviour import policy_set
from dynshift_envs import ROBOTS
from dynshift_agents.evaluation import episode_returns

CHECKPOINT = "checkpoint.zip"
REPLAY_BUFFER = "replay_buffer.pkl"


def atomic_save(save, path: Path) -> None:
    """Write through ``save(tmp_path)`` and move into place, so a crash never leaves a torn file."""
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    save(tmp)
    os.replace(tmp, path)


class Snapshots(BaseCallback):
    """Every ``every`` env steps: save the actor, evaluate it, append a row to ``progress.csv``;
    every ``checkpoint_every`` steps: save the whole run for resuming."""

    def __init__(self, run_dir: Path, env_id: str, every: int, checkpoint_every: int, episodes: int, start: float,
                 env_kwargs: dict | None = None):
        super().__init__()
        self.run_dir, self.env_id, self.env_kwargs = run_dir, env_id, dict(env_kwargs or {})
        self.every, self.checkpoint_every, self.episodes = every, checkpoint_every, episodes
        self.start = start
        (run_dir / "snapshots").mkdir(parents=True, exist_ok=True)

    def _on_step(self) -> bool:
        n = self.num_timesteps
        if n % self.every == 0:
            self.snapshot(n)
        if n % self.checkpoint_every == 0:
            self.checkpoint()
        return True

    def snapshot(self, n: int) -> None:
        path = self.run_dir / "snapshots" / f"step_{n:07d}.pt"
        atomic_save(lambda p: torch.save(self.model.policy.actor.state_dict(), p), path)
        returns = episode_returns(self.model.policy, self.env_id, self.episodes, seed=10_000, **self.env_kwargs)
        recent = [info["r"] for info in self.model.ep_info_buffer]
        row = {
            "steps": n,
            "wall_s": round(time.time() - self.start, 1),
            "eval_mean": round(float(np.mean(returns)), 2),
            "eval_std": round(float(np.std(returns)), 2),
            "train_mean": round(float(np.mean(recent)), 2) if recent else "",
        }
        progress = self.run_dir / "progress.csv"
        new = not progress.exists()
        with progress.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        print(f"[{self.env_id}] {n:>8} steps  eval {row['eval_mean']:9.1f} ± {row['eval_std']:7.1f}"
              f"  train {row['train_mean']}  ({row['wall_s']:.0f} s)", flush=True)

    def checkpoint(self) -> None:
        atomic_save(lambda p: self.model.save_replay_buffer(p), self.run_dir / REPLAY_BUFFER)
        atomic_save(lambda p: self.model.save(p), self.run_dir / CHECKPOINT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("robot", choices=sorted(ROBOTS))
    parser.add_argument("--steps", type=int, default=300_000, help="total env steps of the run (default 300 000)")
    parser.add_argument("--out", type=Path, default=Path("runs/behaviour"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--snapshot-every", type=int, default=10_000)
    parser.add_argument("--checkpoint-every", type=int, default=50_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--env-kwargs", type=json.loads, default={}, metavar="JSON",
                        help='train on a shifted robot, e.g. \'{"mass": 1.5}\' (DARA\'s source policies)')
    args = parser.parse_args(argv)
    if args.checkpoint_every % args.snapshot_every:
        parser.error("--checkpoint-every must be a multiple of --snapshot-every")

    torch.set_num_threads(args.threads)
    env_id = ROBOTS[args.robot].env_id
    run_dir = args.out / policy_set(args.robot, args.env_kwargs)
    run_dir.mkdir(parents=True, exist_ok=True)
    env = gym.make(env_id, **args.env_kwargs)

    start = time.time()
    if (run_dir / CHECKPOINT).exists():
        model = SAC.load(run_dir / CHECKPOINT, env=env, device="cpu")
        model.load_replay_buffer(run_dir / REPLAY_BUFFER)
        # Snapshots written after the last checkpoint are redone by the resumed run: drop their rows.
        progress = run_dir / "progress.csv"
        if progress.exists():
            rows = list(csv.DictReader(progress.open()))
            kept = [r for r in rows if int(r["steps"]) <= model.num_timesteps]
            with progress.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(kept)
            if kept:  # wall time continues from the last kept row
                start -= float(kept[-1]["wall_s"])
        print(f"resuming {run_dir} at {model.num_timesteps} steps", flush=True)
    else:
        model = SAC(
            "MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000, learning_starts=10_000,
            batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto",
            policy_kwargs={"net_arch": [256, 256]}, seed=args.seed, device="cpu", verbose=0,
        )
    remaining = args.steps - model.num_timesteps
    if remaining <= 0:
        print(f"{run_dir} already has {model.num_timesteps} ≥ {args.steps} steps", flush=True)
        return
    callback = Snapshots(run_dir, env_id, args.snapshot_every, args.checkpoint_every, args.eval_episodes, start,
                         args.env_kwargs)
    print(f"training SAC on {env_id} for {remaining} more steps ({sys.argv})", flush=True)
    model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=False)


if __name__ == "__main__":
    main()

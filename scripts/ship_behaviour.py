"""Choose a robot's shipped behaviour policies from its training run and measure them.

    python scripts/ship_behaviour.py halfcheetah            # reads runs/behaviour/halfcheetah/

From the run's snapshots (``scripts/train_behaviour.py``), by their evaluation in ``progress.csv``:

- *expert*: the best snapshot of the run;
- *medium*: the run early-stopped at medium level, as D4RL's: the first snapshot whose return
  reaches ``--medium-fraction`` (default 1/3) of the expert's (returns measured from the random
  reference's level would change nothing here: it is near 0 for every robot) *and* whose forward
  reward — the return for progress alone, ``info["reward_forward"]`` summed over an episode — reaches
  the same fraction of the expert's, both over ``--progress-episodes`` (5) deterministic episodes with
  their own seeds. The second condition keeps a robot that only survives out: Hopper's, Walker2d's
  and Ant's healthy reward alone is worth 1 000 per episode, a third of an expert's return (the
  heavier hopper's 50 000-step snapshot stood still and passed the return rule alone; see
  docs/datasets.md);
- *mixed-1 … mixed-K*: up to ``--mixed-snapshots`` snapshots evenly spaced between the end of the
  random warm-up and the medium one (the policies of D4RL-style *medium-replay* data).

Then it measures, with seeds never used for the choice: medium and expert over ``--episodes``
(10) deterministic episodes, and the robot's reference returns (uniform random actions and the
expert, ``--reference-episodes`` = 100 each), copies the actor files into
``dynshift_agents/policies/`` and updates ``index.json``, and prints the table row for the docs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dynshift_agents.behaviour import UniformPolicy, build_policy, policy_set
from dynshift_envs import ROBOTS
from dynshift_agents.evaluation import episode_returns, episode_totals

POLICIES = Path(__file__).resolve().parents[1] / "dynshift_agents" / "policies"
TABLE_SEED = 0          # medium/expert table: seeds 0..9
REFERENCE_SEED = 1000   # references: seeds 1000..1099 (training evaluations used 10 000..)
PROGRESS_SEED = 2000    # the medium rule's forward-reward check: seeds 2000..
WARM_UP = 10_000        # the run's random steps (learning_starts)


def load_actor(env_id: str, path: Path):
    policy = build_policy(env_id)
    policy.actor.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    policy.set_training_mode(False)
    return policy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("robot", choices=sorted(ROBOTS))
    parser.add_argument("--runs", type=Path, default=Path("runs/behaviour"))
    parser.add_argument("--medium-fraction", type=float, default=1 / 3)
    parser.add_argument("--mixed-snapshots", type=int, default=5)
    parser.add_argument("--progress-episodes", type=int, default=5,
                        help="episodes of the medium rule's forward-reward check (default 5)")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--reference-episodes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--env-kwargs", type=json.loads, default={}, metavar="JSON",
                        help="ship the policies of a run on a shifted robot (train_behaviour.py --env-kwargs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    env_id = ROBOTS[args.robot].env_id
    key = policy_set(args.robot, args.env_kwargs)  # "hopper", or "hopper@mass1p5" for a shifted robot
    shift = args.env_kwargs or None
    run = args.runs / key
    rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader((run / "progress.csv").open())]
    rows = [r for r in rows if (run / "snapshots" / f"step_{int(r['steps']):07d}.pt").exists()]
    expert = max(rows, key=lambda r: r["eval_mean"])
    medium = choose_medium(rows, expert, args.medium_fraction, progress(run, env_id, args))
    candidates = [r for r in rows if WARM_UP <= r["steps"] < medium["steps"]]
    picks = np.unique(np.linspace(0, len(candidates) - 1, min(args.mixed_snapshots, len(candidates))).round().astype(int))
    chosen = {"expert": expert, "medium": medium} | {f"mixed-{i + 1}": candidates[j] for i, j in enumerate(picks)}

    for old in POLICIES.glob(f"{key}-*.pt"):
        old.unlink()
    entries = []
    for name, row in chosen.items():
        steps = int(row["steps"])
        file = f"{key}-{name}.pt"
        shutil.copyfile(run / "snapshots" / f"step_{steps:07d}.pt", POLICIES / file)
        entry = {"robot": args.robot, "name": name, "file": file, "steps": steps} | ({"shift": shift} if shift else {})
        if name in ("medium", "expert"):  # on the robot it was trained on
            returns = episode_returns(load_actor(env_id, POLICIES / file), env_id, args.episodes, seed=TABLE_SEED,
                                      **args.env_kwargs)
            entry |= {"return_mean": round(float(returns.mean()), 1), "return_std": round(float(returns.std()), 1)}
        entries.append(entry)
        print(json.dumps(entry), flush=True)
    if shift:  # normalised scores keep the nominal robot's references
        update_index(args.robot, shift, entries, None)
        return

    env = gym.make(env_id)
    random_returns = episode_returns(UniformPolicy(env.action_space, REFERENCE_SEED), env_id, args.reference_episodes,
                                     seed=REFERENCE_SEED)
    expert_returns = episode_returns(load_actor(env_id, POLICIES / f"{args.robot}-expert.pt"), env_id,
                                     args.reference_episodes, seed=REFERENCE_SEED)
    references = {"random": round(float(random_returns.mean()), 3), "expert": round(float(expert_returns.mean()), 3),
                  "episodes": args.reference_episodes}
    update_index(args.robot, None, entries, references)
    print(json.dumps({args.robot: references}))


def progress(run: Path, env_id: str, args: argparse.Namespace):
    """``snapshot row -> (mean return, mean forward reward)`` over ``--progress-episodes`` deterministic
    episodes (seeds from :data:`PROGRESS_SEED`) on the robot the run trained on."""
    def measure(row: dict) -> tuple[float, float]:
        actor = load_actor(env_id, run / "snapshots" / f"step_{int(row['steps']):07d}.pt")
        totals = episode_totals(actor, env_id, args.progress_episodes, seed=PROGRESS_SEED,
                                info_keys=("reward_forward",), **args.env_kwargs)
        return float(totals["return"].mean()), float(totals["reward_forward"].mean())
    return measure


def choose_medium(rows: list[dict], expert: dict, fraction: float, measure) -> dict:
    """The first snapshot after the warm-up whose training evaluation reaches ``fraction`` of the
    expert's return and whose forward reward (``measure(row)[1]``) reaches ``fraction`` of the
    expert's; snapshots that pass the return test are measured in order until one passes both (the
    expert itself always does, unless it does not move forward)."""
    expert_forward = measure(expert)[1]
    print(f"expert {int(expert['steps'])}: forward reward {expert_forward:.1f}", flush=True)
    for row in rows:
        if row["steps"] <= WARM_UP or row["eval_mean"] < fraction * expert["eval_mean"]:
            continue
        ret, forward = measure(row)
        passed = forward >= fraction * expert_forward
        print(f"medium candidate {int(row['steps'])}: return {ret:.1f}, forward reward {forward:.1f}"
              f" ({'passes' if passed else 'below'} {fraction:.3g} of the expert's)", flush=True)
        if passed:
            return row
    raise SystemExit(f"no snapshot reaches {fraction:.3g} of the expert's return and forward reward; "
                     "train longer or lower --medium-fraction")


def update_index(robot: str, shift: dict | None, entries: list[dict], references: dict | None) -> None:
    """Replace the rows of ``robot``'s policies trained on ``shift`` (``None``: nominal) in index.json,
    and its references when given; read-modify-write under a lock, so robots shipped in parallel do
    not overwrite each other."""
    index_path = POLICIES / "index.json"
    with open(POLICIES / ".index.lock", "w") as lock, contextlib.ExitStack():
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = json.loads(index_path.read_text()) if index_path.exists() else {"policies": [], "references": {}}
        kept = [p for p in table["policies"] if not (p["robot"] == robot and p.get("shift") == shift)]
        table["policies"] = sorted(kept + entries, key=lambda p: (p["robot"], json.dumps(p.get("shift")), p["steps"]))
        if references is not None:
            table["references"] = dict(sorted((table["references"] | {robot: references}).items()))
        tmp = index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(table, indent=1) + "\n")
        os.replace(tmp, index_path)


if __name__ == "__main__":
    main()

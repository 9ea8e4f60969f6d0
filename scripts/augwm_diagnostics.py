"""Where AugWM's augmented next states land, and what MOPO's penalty says of them (issue 37, part 3).

    python scripts/augwm_diagnostics.py RUN [--z 0.5 1.5 --z 0.8 1.2] [--states 2000]

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a model-based run or checkpoint directory")
    parser.add_argument("--z", nargs=2, type=float, action="append", metavar=("LOW", "HIGH"),
                        help="a z range (repeatable; default 0.5 1.5 and 0.8 1.2)")
    parser.add_argument("--states", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ranges = args.z or [(0.5, 1.5), (0.8, 1.2)]
    agent = load(args.run)
    data = load_transitions(agent.dataset_id)
    generator = torch.Generator().manual_seed(args.seed)
    rows = np.random.default_rng(args.seed).choice(len(data), size=args.states, replace=False)
    obs = torch.as_tensor(data.obs[rows])
    scale = np.maximum(data.obs.std(0), 1e-6)
    d = obs.shape[1]

    def act(states: torch.Tensor) -> torch.Tensor:
        return agent._act(states, torch.arange(len(states)))

    with torch.no_grad():
        next_obs, _, _, std = agent.world_model.sample(obs, act(obs), generator=generator)
        print(f"{args.run} ({agent.name}, {agent.gradient_steps} steps), {args.states} dataset states of "
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

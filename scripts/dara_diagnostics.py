"""Where DARA's reward change can act: how much of Δr a function of the state alone explains, how well
the two robots' data overlap, and how much of an advantage-weighted learner's weight the source rows get.

    python scripts/dara_diagnostics.py runs/results/dara-hopper-cpu/dynshift__hopper__medium-first0p1-v0/awr-*/seed0

For each DARA run (its ``dara.pt`` and the two dataset ids its checkpoint records) it prints

- Δr on the source rows (clipped, as relabelled) and the held-out R² of Δr regressed on the state s
  alone by a small MLP (fitted on eight tenths of the source rows, chosen on one, scored on the last). A reward change
  that is a function of s is absorbed by any value of s fitted on the relabelled data: it moves
  V(s) and R^λ or Q(s, a) together and leaves the advantages, hence the policy, unchanged. Only the
  part that varies with the action at a state can steer a learner;
- the overlap of the two datasets: the share of source rows whose (s, a) the classifier q_sa gives to
  the source with probability above 0.95, and of target rows it gives to the target above 0.95;
- for AWR and IQL bases, the trained learner's advantage weights on its own data (target ∪ relabelled
  source): the source rows' share of the total weight and their mean weight against the target rows'
  (AWR: exp(Â/β) over the dataset with its V; IQL: exp(β·(min Q̄ − V)), each clipped as in training).
  Compare a run at η = 0 with the same seed at η > 0: if the shares barely move, the relabelling did
  not reach the policy;
- and the learner's V(s) on the source rows and on the target rows (env reward units): where the
  penalty went instead. A penalty absorbed by V lowers the source rows' V and leaves their weights.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dynshift_agents.adaptation.dara import DARA
from dynshift_agents.algorithms import load
from dynshift_agents.algorithms.behaviour_models import mlp
from dynshift_agents.algorithms.iql import advantage_weights
from dynshift_agents.data import load_transitions


def state_r2(obs: np.ndarray, delta: np.ndarray, seed: int = 0, steps: int = 3000) -> float:
    """R² of ``delta`` regressed on standardised ``obs`` (MLP 256-256, Adam 1e-3, batch 512), on a tenth of
    the rows held out; another tenth picks the network (the lowest loss of checks every 100 steps), so
    an MLP that overfits noise scores about 0, not below."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    order = rng.permutation(len(obs))
    tenth = len(obs) // 10
    test, validation, train = order[:tenth], order[tenth:2 * tenth], order[2 * tenth:]
    x = torch.as_tensor((obs - obs[train].mean(0)) / (obs[train].std(0) + 1e-6), dtype=torch.float32)
    y = torch.as_tensor(delta, dtype=torch.float32)
    net = mlp(obs.shape[1], 1, (256, 256))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loss_on(rows) -> float:
        with torch.no_grad():
            return float(F.mse_loss(net(x[rows]).squeeze(-1), y[rows]))

    best, best_state = loss_on(validation), copy.deepcopy(net.state_dict())
    for step in range(1, steps + 1):
        rows = torch.as_tensor(rng.choice(train, 512))
        loss = F.mse_loss(net(x[rows]).squeeze(-1), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 and (current := loss_on(validation)) < best:
            best, best_state = current, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return float(1 - loss_on(test) / y[test].var(unbiased=False))


@torch.no_grad()
def advantage_weights_on_data(agent) -> np.ndarray | None:
    """The trained learner's clipped advantage weights on every row of its attached data, or ``None``
    for a base without advantage-weighted extraction."""
    learner = agent.learner
    if agent.name == "awr":
        learner.refresh()
        return learner.weights.cpu().numpy()
    if agent.name == "iql":
        real = learner.replay_buffer.real
        obs, actions = torch.as_tensor(real["observations"]), torch.as_tensor(real["actions"])
        advantage = learner.min_target_q(obs, actions) - learner.value_net(obs)
        return advantage_weights(advantage, agent.config.beta, agent.config.max_weight).squeeze(-1).cpu().numpy()
    return None


@torch.no_grad()
def values_on_data(agent) -> np.ndarray | None:
    """The trained learner's V(s) on every row of its attached data, in the env's reward units, or ``None``
    for a base without a state-value network."""
    value_net = getattr(agent.learner, "value_net", None)
    if value_net is None:
        return None
    obs = torch.as_tensor(agent.learner.replay_buffer.real["observations"])
    return value_net(obs).squeeze(-1).numpy() / agent.reward_units()


def diagnose(run: Path) -> None:
    agent = load(run)
    provenance = agent.provenance.get("dara")
    if provenance is None:
        raise SystemExit(f"{run} is not a DARA run (its checkpoint records no DARA provenance)")
    dara = DARA.load(run / "dara.pt")
    target, source = load_transitions(provenance["target_dataset"]), load_transitions(provenance["source_dataset"])
    delta = dara.delta_r(source)
    print(f"{run}  ({agent.name}, η = {dara.config.eta:g}, {len(target)} target + {len(source)} source rows)")
    print(f"  classifiers held-out accuracy: (s,a,s') {dara.report['sas_accuracy']:.3f}, (s,a) {dara.report['sa_accuracy']:.3f}")
    print(f"  Δr on the source: {delta.mean():.3f} ± {delta.std():.3f}; held-out R² of Δr on s alone: "
          f"{state_r2(source.obs, delta):.3f}")
    p_src, p_tgt = dara.source_probability(source), dara.source_probability(target)
    print(f"  overlap: q_sa(src) > 0.95 on {np.mean(p_src > 0.95):.1%} of source rows; q_sa(tgt) > 0.95 on "
          f"{np.mean(p_tgt < 0.05):.1%} of target rows")
    agent.attach_dataset(dara.dataset(source, target))
    weights = advantage_weights_on_data(agent)
    if weights is None:
        return
    w_tgt, w_src = weights[:len(target)], weights[len(target):]
    print(f"  {agent.name} weights: source share of the total {w_src.sum() / weights.sum():.3f} "
          f"(rows {len(source) / len(weights):.3f}); mean weight source {w_src.mean():.3f}, target {w_tgt.mean():.3f}; "
          f"source rows at the clip {np.mean(w_src >= agent.config.max_weight):.1%}")
    mixed = p_src <= 0.95
    if mixed.any():
        print(f"  on the source rows q_sa cannot place (q_sa(src) ≤ 0.95, {mixed.mean():.1%}): mean weight {w_src[mixed].mean():.3f}")
    values = values_on_data(agent)
    if values is not None:
        print(f"  V(s) in env reward units: mean on source rows {values[len(target):].mean():.1f}, "
              f"on target rows {values[:len(target)].mean():.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="DARA run directories (each with dara.pt and checkpoint/)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    for run in args.runs:
        diagnose(run)


if __name__ == "__main__":
    main()

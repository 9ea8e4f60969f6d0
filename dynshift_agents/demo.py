"""``dynshift demo``: the whole path on one machine — data, world model, MOPO vs AugWM, grid, video.

1. collect HalfCheetah *mixed* data with the shipped behaviour snapshots (reused if present);
2. fit the ensemble world model on it (cached, reused);
3. train MOPO and AugWM (DAS, context-conditioned: "LM" with online inference) briefly;
4. evaluate both on a 3×3 mass × damping grid (resumable), with a heatmap each and a table with
   Welch's t-test;
5. render the AugWM switch test (mass 0.75, damping 0.5 from step 500), MOPO beside AugWM.

The default budget took 6 min 46 s on 2 CPU cores from an empty store and cache; ``--quick`` runs
the same path with tiny budgets in under two minutes (the test suite runs it). The budgets are far
below the papers' — the demo shows the machinery, not the papers' numbers (``scripts/reproduce_*.py``
are for those).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Budget:
    dataset_kind: str
    dataset_size: int | None
    dataset_id: str
    model: dict
    agent: dict
    gradient_steps: int
    multipliers: tuple[float, ...]
    episodes: int
    video_steps: int
    video_size: tuple[int, int]
    video_every: int


FULL = Budget("mixed", None, "dynshift/halfcheetah/mixed-v0", {"fit_bf16": True, "max_epochs": 60},
              {"rollout_batch_size": 10_000}, 15_000, (0.5, 1.0, 1.5), 3, 1500, (320, 240), 2)
QUICK = Budget("medium", 3000, "dynshift/halfcheetah/medium-demo-quick-v0",
               {"hidden": (32, 32), "weight_decay": (0.0, 0.0, 0.0), "max_epochs": 3},
               {"rollout_batch_size": 200, "rollout_freq": 100, "net_arch": (32, 32), "batch_size": 64}, 200,
               (0.5, 1.5), 1, 60, (160, 128), 2)


def run_demo(quick: bool = False, out: str | Path = "runs/demo", workers: int = 2, threads: int = 2) -> list[Path]:
    """Run the demo; returns the files it wrote."""
    from dynshift_agents import reports
    from dynshift_agents.algorithms import AugWM, AugWMConfig, MOPO, MOPOConfig, OfflineAgent
    from dynshift_agents.data import collect, load_transitions
    from dynshift_agents.evaluation import run_grid
    from dynshift_agents.experiment import world_model_for
    from dynshift_agents.video import PROTOCOLS, write_video
    from dynshift_agents.world_model import WorldModelConfig

    budget = QUICK if quick else FULL
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    env_id = "DynShift/HalfCheetah-v0"
    start = time.perf_counter()

    def stage(text: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {text}", flush=True)

    stage(f"1/5 dataset {budget.dataset_id} ({budget.dataset_kind}, shipped behaviour policies)")
    collect("halfcheetah", budget.dataset_kind, size=budget.dataset_size, dataset_id=budget.dataset_id)
    data = load_transitions(budget.dataset_id)

    stage(f"2/5 world model on {len(data):,} transitions (cached after the first run)")
    model = world_model_for(budget.dataset_id, WorldModelConfig(**budget.model), seed=0,
                            log=lambda epoch, s: print(f"    epoch {epoch}: holdout MSE {s['holdout_mse']:.4f}", flush=True)
                            if epoch % 10 == 0 else None)

    agents = {}
    for name, cls, config in (("MOPO", MOPO, MOPOConfig), ("AugWM", AugWM, AugWMConfig)):
        extra = {"context": True} if name == "AugWM" else {}
        checkpoint = out / "checkpoints" / name
        stage(f"3/5 training {name} for {budget.gradient_steps:,} gradient steps")
        if (checkpoint / "agent.json").exists() and OfflineAgent.load(checkpoint).gradient_steps >= budget.gradient_steps:
            agents[name] = checkpoint
            continue
        agent = cls(env_id, model, data, config.for_dataset(budget.dataset_id, **budget.agent, **extra), seed=0,
                    dataset_id=budget.dataset_id)
        agent.learn(budget.gradient_steps, log_dir=out / "logs" / name, log_formats=("csv",), checkpoint_dir=checkpoint,
                    checkpoint_every=5_000)
        agents[name] = checkpoint

    settings = [{"mass": m, "damping": d} for m in budget.multipliers for d in budget.multipliers]
    stage(f"4/5 evaluating both on {len(settings)} mass × damping settings × {budget.episodes} episodes")
    records = run_grid({name: str(path) for name, path in agents.items()}, env_id, settings, budget.episodes,
                       out / "grid" / "records.jsonl", workers=workers, settings_per_batch=max(1, len(settings) // 2))
    reports.write_csv(records, out / "grid" / "records.csv")
    table = reports.markdown_table(records, compare=("AugWM", "MOPO"))
    (out / "grid" / "table.md").write_text(
        f"HalfCheetah, {budget.dataset_id}, {budget.gradient_steps:,} gradient steps, seed 0; {budget.episodes} "
        f"episodes per setting; * marks p < 0.05 (Welch).\n\n{table}\n")
    means = [r["mean"] for r in reports.summarise(records)]
    heatmaps = []
    for name in agents:
        heatmaps.append(out / "grid" / f"heatmap-{name}.png")
        reports.heatmap(records, name, heatmaps[-1], vmin=min(means), vmax=max(means))
    print(table, flush=True)

    protocol = PROTOCOLS["augwm-switch"]
    steps = min(protocol["steps"], budget.video_steps)
    schedule = protocol["env_kwargs"]["schedule"] if steps == protocol["steps"] else [
        dict(protocol["env_kwargs"]["schedule"][0], step=steps // 3)]
    stage(f"5/5 video: {steps} steps, switch at step {schedule[0]['step']} to mass 0.75, damping 0.5")
    video = write_video({name: OfflineAgent.load(path) for name, path in (("MOPO", agents["MOPO"]), ("AugWM", agents["AugWM"]))},
                        env_id, out / "switch.mp4", steps=steps, env_kwargs={"schedule": schedule},
                        width=budget.video_size[0], height=budget.video_size[1], every=budget.video_every)
    files = [out / "grid" / "records.csv", out / "grid" / "table.md", *heatmaps, video,
             *(path for path in agents.values())]
    (out / "summary.json").write_text(json.dumps({"quick": quick, "seconds": round(time.perf_counter() - start, 1),
                                                  "files": [str(f) for f in files]}, indent=1))
    stage("done")
    return files

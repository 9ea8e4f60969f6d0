"""``dynshift demo``: the whole path on one machine — data, world model, MOPO vs AugWM, grid, video.

1. collect HalfCheetah *mixed* data with the shipped behaviour snapshots (reused if present);
2. fit the ensemble world model on it (cached, reused);
3. train MOPO and AugWM (DAS, context-conditioned: "LM" with online inference) briefly;
4. evaluate both on a 3×3 mass × damping grid (resumable), with a heatmap each and a table with
   Welch's t-test;
5. render the AugWM switch test (mass 0.75, damping 0.5 from step 500), MOPO beside AugWM.

The default budget took 9 min 9 s on 2 CPU cores (AMD EPYC, bf16 units) from an empty store and
cache, the two agents trained side by side in single-thread processes; ``--quick`` runs
the same path with tiny budgets in under two minutes (the test suite runs it). The budgets are far
below the papers' — the demo shows the machinery, not the papers' numbers (the studies in
``experiments/``, run with ``dynshift sweep``, are for those).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
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


FULL = Budget("mixed", None, "dynshift/halfcheetah/mixed-v0", {"precision": "auto", "max_epochs": 60},
              {"rollout_batch_size": 10_000}, 15_000, (0.5, 1.0, 1.5), 3, 1500, (320, 240), 2)
QUICK = Budget("medium", 3000, "dynshift/halfcheetah/medium-demo-quick-v0",
               {"hidden": (32, 32), "weight_decay": (0.0, 0.0, 0.0), "max_epochs": 3},
               {"rollout_batch_size": 200, "rollout_freq": 100, "net_arch": (32, 32), "batch_size": 64}, 200,
               (0.5, 1.5), 1, 60, (160, 128), 2)


def _train_agent(job: tuple[str, Budget, Path, int, int]) -> Path:
    """Train (or resume, or find finished) one of the demo's agents; returns its checkpoint."""
    from dynshift_agents.experiment import train
    from dynshift_agents.world_model import WorldModelConfig

    name, budget, out, position, threads = job
    torch.set_num_threads(threads)
    run = out / "runs" / name
    train(name.lower(), budget.dataset_id, budget.gradient_steps, seed=0, out=run,
          overrides=budget.agent | ({"context": True} if name == "AugWM" else {}),
          world_model_config=WorldModelConfig(**budget.model), checkpoint_every=5_000, threads=threads, log_formats=("csv",),
          progress_position=position)
    return run / "checkpoint"


def run_demo(quick: bool = False, out: str | Path = "runs/demo", workers: int = 2, threads: int = 2) -> list[Path]:
    """Run the demo; returns the files it wrote."""
    from dynshift_agents import reports
    from dynshift_agents.algorithms import load
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
    world_model_for(budget.dataset_id, WorldModelConfig(**budget.model), seed=0)

    names = ("MOPO", "AugWM")
    stage(f"3/5 training {' and '.join(names)} for {budget.gradient_steps:,} gradient steps each"
          + (", side by side, one thread each" if workers > 1 else ""))
    jobs = [(name, budget, out, position, 1 if workers > 1 else threads) for position, name in enumerate(names)]
    if workers > 1:  # two single-thread jobs use 2 cores better than one job on two threads
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            agents = dict(zip(names, pool.map(_train_agent, jobs)))
    else:
        agents = {name: _train_agent(job) for name, job in zip(names, jobs)}

    settings = [{"mass": m, "damping": d} for m in budget.multipliers for d in budget.multipliers]
    stage(f"4/5 evaluating both on {len(settings)} mass × damping settings × {budget.episodes} episodes")
    records = run_grid({name: str(path) for name, path in agents.items()}, env_id, settings, budget.episodes,
                       out / "grid" / "records.jsonl", workers=workers, settings_per_batch=max(1, len(settings) // 2),
                       progress=True)
    table, written = reports.write_grid_report(
        records, out / "grid", f"HalfCheetah, {budget.dataset_id}, {budget.gradient_steps:,} gradient steps, seed 0; "
        f"{reports.count(budget.episodes, 'episode')} per setting", compare=("AugWM", "MOPO"))
    heatmaps = written[2:]
    print(table, flush=True)

    protocol = PROTOCOLS["augwm-switch"]
    steps = min(protocol["steps"], budget.video_steps)
    schedule = protocol["env_kwargs"]["schedule"] if steps == protocol["steps"] else [
        dict(protocol["env_kwargs"]["schedule"][0], step=steps // 3)]
    stage(f"5/5 video: {steps} steps, switch at step {schedule[0]['step']} to mass 0.75, damping 0.5")
    video = write_video({name: load(path) for name, path in (("MOPO", agents["MOPO"]), ("AugWM", agents["AugWM"]))},
                        env_id, out / "switch.mp4", steps=steps, env_kwargs={"schedule": schedule},
                        width=budget.video_size[0], height=budget.video_size[1], every=budget.video_every,
                        progress=True)
    files = [out / "grid" / "records.csv", out / "grid" / "table.md", *heatmaps, video,
             *(path for path in agents.values())]
    (out / "summary.json").write_text(json.dumps({"quick": quick, "seconds": round(time.perf_counter() - start, 1),
                                                  "files": [str(f) for f in files]}, indent=1))
    stage("done")
    return files

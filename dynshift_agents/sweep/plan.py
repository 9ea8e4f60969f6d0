"""A sweep's dependency graph: collect → world model → train → evaluate / grid → report.

Every task but the report is one ``dynshift`` command whose output directory is its unit of
resume: ``collect``, ``train`` and ``grid`` continue where an interrupted run stopped, and a task
whose output is complete is *done* and never run again. So running a spec twice trains nothing
twice, and :func:`build_plan` tells from the files alone what is left (``dynshift sweep --dry-run``).
A run's records outlive its checkpoint: a train task is done once every task that reads the
checkpoint (evaluate, grids) is done, so a study whose output directory is kept in a repository
without its checkpoints (``docs/results/<study>/runs/``, see ``.gitignore``) resumes on a fresh clone
without training its finished runs again.

Layout under the spec's ``output`` (the reproduction scripts' layout)::

    <dataset>/<label>/seed<k>/          train.log, progress.csv, checkpoint/, eval.json, grid-<grid>/
    <dataset>/world-model-<algorithm>-seed<s>.log
    logs/collect-<dataset>.log
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dynshift_agents.run_options import DEFAULTS
from dynshift_agents.sweep import report
from dynshift_agents.sweep.layout import (DIVERGED, diverged, grid_complete, grids_for, policy_name, run_dir, slug,
                                          trained_steps, world_model_file)
from dynshift_agents.sweep.spec import SweepSpec

@dataclass
class Task:
    """One node of the graph."""

    key: str
    """Unique and readable: ``train dynshift/hopper/medium-v0 td3bc seed1``."""
    kind: str
    """collect, world-model, train, evaluate, grid or report."""
    command: list[str] | None
    """``dynshift`` arguments (``None`` for the report, written by the driver itself)."""
    log: Path
    deps: tuple[str, ...]
    is_done: Callable[[], bool] = field(repr=False)
    run_dir: Path | None = None
    """Train, evaluate and grid tasks: the run they belong to (skipped if it diverged)."""
    outputs: tuple[Path, ...] = ()

    def shell(self) -> str:
        """The command as one would type it."""
        import shlex

        return "dynshift " + " ".join(shlex.quote(a) for a in self.command) if self.command else "(report)"


def _sets(values: dict[str, Any], flag: str = "--set") -> list[str]:
    """``{key: value}`` as ``FLAG key=<JSON>`` pairs (``--set``, ``--dara-set``, ``--world-model-set``)."""
    return [a for key, value in values.items() for a in (flag, f"{key}={json.dumps(value)}")]


def build_plan(spec: SweepSpec) -> list[Task]:
    """Every task of the sweep, dependencies before dependants."""
    from dynshift_agents.algorithms import MODEL_BASED

    tasks: list[Task] = []
    world_models: dict[Path, str] = {}
    finals: list[str] = []
    budget = spec.budget
    device = [] if spec.device == DEFAULTS.device else ["--device", spec.device]  # CPU commands as before
    made = {d.id: f"{'subset' if d.subset_of else 'collect'} {d.id}" for d in spec.datasets}
    for dataset in spec.datasets:  # every dataset first: a subset or a DARA source may come later in the list
        collect_key = made[dataset.id]
        if dataset.subset_of is not None:  # DARA's 1T: the first fraction of another dataset of the spec
            command = ["subset", dataset.subset_of, "--fraction", repr(dataset.fraction), "--dataset-id", dataset.id]
            deps: tuple[str, ...] = (made[dataset.subset_of],)
        else:
            command = ["collect", dataset.robot, dataset.kind, "--dataset-id", dataset.id, "--seed", str(dataset.seed)]
            if dataset.size is not None:
                command += ["--size", str(dataset.size)]
            if dataset.env_kwargs:
                command += ["--env-kwargs", json.dumps(dataset.env_kwargs)]
            if dataset.policies != "nominal":
                command += ["--policies", dataset.policies]
            deps = ()
        tasks.append(_dataset_task(spec, collect_key, dataset.id, command, deps))
    tasks.sort(key=lambda t: bool(t.deps))  # collections before subsets of them
    for dataset in spec.datasets:
        collect_key = made[dataset.id]
        for algorithm in spec.algorithms_for(dataset.id):
            for seed in spec.seeds:
                run = run_dir(spec, dataset.id, algorithm, seed)
                deps = [collect_key]
                if algorithm.algorithm == "dara":  # the row's dataset is the target
                    train = ["train", "dara", "--base", algorithm.base, "--target-dataset", dataset.id,
                             "--source-dataset", algorithm.source]
                    train += _sets(algorithm.dara, "--dara-set")
                    deps.append(made[algorithm.source])
                    if algorithm.base in MODEL_BASED:  # its world model is fitted in the run, on both robots' data
                        _, settings = world_model_file(spec, dataset.id, algorithm.base, seed)
                        train += _sets(settings, "--world-model-set")
                else:
                    train = ["train", algorithm.algorithm, "--dataset", dataset.id]
                train += ["--seed", str(seed), "--out", str(run), "--gradient-steps", str(budget.gradient_steps),
                          "--checkpoint-every", str(budget.checkpoint_every), "--no-progress", "--threads", "1",
                          *_sets(algorithm.set)]
                if budget.eval_every:
                    train += ["--eval-every", str(budget.eval_every), "--eval-episodes", str(budget.eval_episodes)]
                if budget.keep_checkpoints:
                    train.append("--keep-checkpoints")
                train += device
                if algorithm.algorithm in MODEL_BASED:
                    model_seed = seed if spec.world_model.seed is None else spec.world_model.seed
                    path, settings = world_model_file(spec, dataset.id, algorithm.algorithm, model_seed)
                    key = world_models.get(path)
                    if key is None:  # algorithms with the same model settings share one fit
                        key = world_models[path] = f"world-model {dataset.id} {algorithm.algorithm} seed{model_seed}"
                        tasks.append(Task(key, "world-model",
                                          ["train", "world-model", "--dataset", dataset.id, "--for", algorithm.algorithm,
                                           "--seed", str(model_seed), "--threads", "1", "--no-progress", *_sets(settings)],
                                          spec.output / slug(dataset.id) / f"world-model-{algorithm.algorithm}-seed{model_seed}.log",
                                          (collect_key,), path.exists, outputs=(path,)))
                    deps.append(key)
                    train += ["--world-model", str(path)]
                train_key = f"train {dataset.id} {algorithm.label} seed{seed}"
                training = Task(train_key, "train", train, run / "train.log", tuple(deps), lambda: False,
                                run_dir=run, outputs=(run / "checkpoint",))
                tasks.append(training)
                uses: list[Task] = []  # the run's evaluate and grid tasks: what its checkpoint is for
                if spec.evaluation.episodes:
                    result = run / "eval.json"
                    key = f"evaluate {dataset.id} {algorithm.label} seed{seed}"
                    tasks.append(Task(key, "evaluate",
                                      ["evaluate", str(run), "--episodes", str(spec.evaluation.episodes), "--seed",
                                       str(spec.evaluation.seed), "--json", "--out", str(result), *device],
                                      run / "evaluate.log", (train_key,),
                                      lambda run=run, result=result: diverged(run) or _evaluated(
                                          result, budget.gradient_steps), run_dir=run, outputs=(result,)))
                    uses.append(tasks[-1])
                    finals.append(key)
                for grid in grids_for(spec, dataset.id, algorithm):
                    folder = run / f"grid-{grid.label}"
                    name = policy_name(algorithm, seed)
                    key = f"grid {grid.label} {dataset.id} {algorithm.label} seed{seed}"
                    command = ["grid", str(run), "--grid", grid.file or grid.name, "--episodes", str(grid.episodes),
                               "--seed", str(grid.seed), "--names", name, "--workers", "1", "--out", str(folder), *device]
                    grid_deps = [train_key]
                    if algorithm.algorithm == "fb" and grid.fb_task != "train":  # z per setting, from its robot
                        command += ["--fb-task", grid.fb_task, "--fb-test-kind", grid.fb_test_kind,
                                    "--fb-test-size", str(grid.fb_test_size)]
                        grid_deps += _test_datasets(tasks, spec, dataset, grid)
                    tasks.append(Task(key, "grid", command, run / f"grid-{grid.label}.log", tuple(grid_deps),
                                      lambda run=run, folder=folder, name=name, grid=grid: diverged(run) or grid_complete(
                                          folder / "records.jsonl", name, len(grid.settings), grid.episodes),
                                      run_dir=run, outputs=(folder / "records.jsonl",)))
                    uses.append(tasks[-1])
                    finals.append(key)
                training.is_done = _trained(run, budget.gradient_steps, uses)
    outputs = tuple(report.outputs(spec))
    if outputs:
        inputs = [t.outputs[0] for t in tasks if t.key in finals] + [
            run_dir(spec, d.id, a, s) / name for d in spec.datasets for a in spec.algorithms_for(d.id)
            for s in spec.seeds for name in ("progress.csv", DIVERGED)] + ([spec.path] if spec.path else [])
        # the spec itself is an input: a changed caption or reference line redraws the reports; and
        # reports written before every run had finished (`dynshift sweep --report`) are not final
        needed = [t for t in tasks if t.kind in ("train", "evaluate", "grid")]
        tasks.append(Task("report", "report", None, spec.output / "logs" / "report.log",
                          tuple(t.key for t in needed),
                          lambda: _newer(outputs, inputs) and all(t.is_done() for t in needed), outputs=outputs))
    return tasks


def _trained(run: Path, steps: int, uses: list[Task]) -> Callable[[], bool]:
    """A train task is done once its run diverged, or its checkpoint holds ``steps`` gradient steps, or
    every task that reads the checkpoint is done: a run whose records (``eval.json``, grid records,
    ``progress.csv``) were kept without the checkpoint, as a study's records committed to a repository
    are, is not trained again."""
    return lambda: diverged(run) or trained_steps(run) >= steps or (bool(uses) and all(t.is_done() for t in uses))


def _evaluated(result: Path, steps: int) -> bool:
    """``eval.json`` exists and evaluated a policy of at least ``steps`` gradient steps (a budget raised
    in the spec evaluates again)."""
    if not result.exists():
        return False
    return int(json.loads(result.read_text()).get("gradient_steps", steps)) >= steps


def _dataset_task(spec: SweepSpec, key: str, dataset_id: str, command: list[str], deps: tuple[str, ...] = ()) -> Task:
    """A task that makes a dataset (``collect`` or ``subset``, the key's first word); done once the
    dataset is in the store."""
    from dynshift_agents.data.catalog import datasets_root

    kind, store = key.split()[0], datasets_root() / dataset_id
    return Task(key, kind, command, spec.output / "logs" / f"{kind}-{slug(dataset_id)}.log", deps,
                lambda: (store / "data").is_dir(), outputs=(store,))


def _test_datasets(tasks: list[Task], spec: SweepSpec, dataset, grid) -> list[str]:
    """Collect tasks (added once) for the test dataset of every setting of ``grid`` on the robot of
    ``dataset``: what an FB grid with a task per setting reads."""
    from dynshift_agents.adaptation.contextual import test_dataset_id

    keys, known = [], {t.key for t in tasks}
    for setting in grid.settings:
        test_id = test_dataset_id(dataset.robot, grid.fb_test_kind, dict(setting), grid.fb_test_size)
        key = f"collect {test_id}"
        if key not in known:
            tasks.insert(0, _dataset_task(spec, key, test_id,
                                          ["collect", dataset.robot, grid.fb_test_kind, "--dataset-id", test_id,
                                           "--size", str(grid.fb_test_size), "--env-kwargs", json.dumps(setting)]))
            known.add(key)
        keys.append(key)
    return keys


def _newer(outputs: tuple[Path, ...], inputs: list[Path]) -> bool:
    """Every output exists and none is older than an input that exists."""
    if not all(p.exists() for p in outputs):
        return False
    newest_input = max((p.stat().st_mtime for p in inputs if p.exists()), default=0.0)
    return min(p.stat().st_mtime for p in outputs) >= newest_input


def task_environment() -> dict[str, str]:
    """What every task's process gets: one torch thread, this driver's dataset store and DynShift
    home (so a cluster's workers use the shared ones), headless rendering."""
    from dynshift_agents.data.catalog import datasets_root
    from dynshift_agents.home import dynshift_home

    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MINARI_DATASETS_PATH": str(datasets_root().resolve()),
           "DYNSHIFT_HOME": str(dynshift_home().resolve())}
    env["MUJOCO_GL"] = os.environ.get("MUJOCO_GL", "egl")
    return env

"""The ``dynshift`` command line (also ``python -m dynshift_agents``).

    dynshift collect halfcheetah medium                       # dynshift/halfcheetah/medium-v0
    dynshift collect hopper expert --mass 1.5 --size 20000    # dynshift/hopper/expert-mass1p5-v0
    dynshift collect ant random --crippled-legs 3 --d4rl-size
    dynshift datasets                                         # what is collected locally
    dynshift train world-model --dataset dynshift/halfcheetah/mixed-v0
    dynshift train mopo --dataset dynshift/halfcheetah/mixed-v0 --gradient-steps 100000 --seed 0
    dynshift evaluate runs/mopo/dynshift__halfcheetah__mixed-v0/seed0/checkpoint \
        --env DynShift/HalfCheetah-v0 --mass 1.5 --episodes 10 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any

from dynshift_agents.run_options import DEFAULTS, DEVICE_CHOICES, RunOptions, check_device, resolve_device


class UsageError(SystemExit):
    """A command-line usage error: its message on stderr, exit status 2 (as argparse's own errors)."""

    def __init__(self, message: str):
        print(f"dynshift: error: {message}", file=sys.stderr)
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def add_shift_options(parser: argparse.ArgumentParser) -> None:
    """``--mass``, ``--damping``, ``--friction``, ``--gravity``, ``--joint-range``, ``--crippled-legs``,
    ``--morphology`` and ``--env-kwargs JSON``."""
    group = parser.add_argument_group("dynamics shift (DynShift env keywords)")
    group.add_argument("--mass", type=float, help="multiply every body's mass and inertia")
    group.add_argument("--damping", type=float, help="multiply every joint's damping")
    group.add_argument("--friction", nargs="+", metavar="K|GEOM=K",
                       help="multiply every contact's friction (a number), or the friction of the named geoms' "
                            "contacts (GEOM=K ..., e.g. foot_geom=0.5)")
    group.add_argument("--gravity", type=float, help="multiply gravity")
    group.add_argument("--joint-range", nargs="+", metavar="K|JOINT=K",
                       help="scale limited joints' ranges about their centres: every one (a number) or the named "
                            "ones (JOINT=K ..., e.g. foot_joint=0.5); K < 1 restricts")
    group.add_argument("--crippled-legs", nargs="+", metavar="LEG",
                       help="Ant: legs 0-3 or their names (front_left_leg, front_right_leg, back_leg, right_back_leg)")
    group.add_argument("--morphology", nargs="+", metavar="default|big|small|BODY=K",
                       help="limb size: every limb x 1.25 (big) or x 0.75 (small), or the named bodies "
                            "(BODY=K ..., e.g. thigh=1.5); total mass kept")
    group.add_argument("--env-kwargs", type=json.loads, default={}, metavar="JSON",
                       help='any env keywords as a JSON object, e.g. \'{"mass": {"torso": 2.0}}\'')


def shift_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The env keywords the shift options of ``args`` ask for."""
    if not isinstance(args.env_kwargs, dict):
        raise UsageError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    kwargs = dict(args.env_kwargs)
    if args.mass is not None:
        kwargs["mass"] = args.mass
    for key in ("damping", "gravity"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    for key, option in (("friction", "--friction"), ("joint_range", "--joint-range")):
        if getattr(args, key) is not None:
            kwargs[key] = _multiplier_option(option, getattr(args, key))
    if args.crippled_legs:
        kwargs["crippled_legs"] = [int(leg) if leg.isdigit() else leg for leg in args.crippled_legs]
    if args.morphology is not None:
        named = len(args.morphology) == 1 and args.morphology[0] in ("default", "big", "small")
        kwargs["morphology"] = args.morphology[0] if named else _multiplier_option("--morphology", args.morphology)
    return kwargs


def _count(least: int):
    """An argparse type: an integer ≥ ``least`` (argparse names the option and exits 2 otherwise)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be an integer ≥ {least}, got {value}")
        return value
    parse.__name__ = f"integer ≥ {least}"
    return parse


def _multiplier_option(option: str, values: list[str]) -> float | dict[str, float]:
    """One number, or NAME=NUMBER pairs as a ``{name: number}`` map (names are checked by the env)."""
    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise UsageError(f"{option}: {text!r} is not a number; give K or NAME=K ...") from None

    if len(values) == 1 and "=" not in values[0]:
        return number(values[0])
    pairs = [value.partition("=") for value in values]
    if any(not name or not sep for name, sep, _ in pairs):
        raise UsageError(f"{option}: give one number K, or NAME=K pairs, got {' '.join(values)}")
    return {name: number(value) for name, _, value in pairs}


def _collect(args: argparse.Namespace) -> None:
    from dynshift_agents.data import D4RL_SIZES, collect, list_datasets

    size = args.size
    if args.d4rl_size:
        if size is not None:
            raise UsageError("--size and --d4rl-size exclude each other")
        size = D4RL_SIZES[args.kind]
    dataset = collect(args.env, args.kind, size=size, seed=args.seed, dataset_id=args.dataset_id,
                      env_kwargs=shift_kwargs(args), overwrite=args.overwrite, policies=args.policies)
    row = next(r for r in list_datasets(dataset.spec.dataset_id) if r["dataset_id"] == dataset.spec.dataset_id)
    record = json.loads(dataset.storage.metadata["dynshift"])
    print(f"{row['dataset_id']}: {row['transitions']} transitions, {row['episodes']} episodes, "
          f"return {row['return_mean']:.1f} ± {row['return_std']:.1f}, collected in {record['collection_seconds']} s")


def _subset(args: argparse.Namespace) -> None:
    from dynshift_agents.data import first_fraction, list_datasets

    dataset = first_fraction(args.dataset, args.fraction, args.dataset_id, overwrite=args.overwrite)
    row = next(r for r in list_datasets(dataset.spec.dataset_id) if r["dataset_id"] == dataset.spec.dataset_id)
    print(f"{row['dataset_id']}: the first {args.fraction:g} of {args.dataset}: {row['transitions']} transitions, "
          f"{row['episodes']} episodes, return {row['return_mean']:.1f} ± {row['return_std']:.1f}")


def _datasets(args: argparse.Namespace) -> None:
    from dynshift_agents.data import datasets_root, list_datasets

    rows = list_datasets(args.prefix)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    if not rows:
        print(f"no datasets in {datasets_root()}; make one with `dynshift collect ENV KIND`")
        return
    print(f"datasets in {datasets_root()}")
    header = f"{'dataset id':<48} {'transitions':>11} {'episodes':>8} {'return mean ± std':>21} {'MB':>7}  dynamics"
    print(header)
    for r in rows:
        ret = f"{r['return_mean']:.1f} ± {r['return_std']:.1f}" if r["return_mean"] is not None else "—"
        print(f"{r['dataset_id']:<48} {r['transitions']:>11} {r['episodes']:>8} {ret:>21} {r['bytes'] / 1e6:>7.1f}  "
              f"{json.dumps(r['dynamics']) if r['dynamics'] else 'nominal'}")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` pairs → {key: JSON value, or the text itself}."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set takes KEY=VALUE, got {pair!r}")
        values[key.replace("-", "_")] = _value(value)
    return values


def _add_threads_and_device(parser: argparse.ArgumentParser, threads: bool = True) -> None:
    """``--threads`` and ``--device`` (their defaults are :data:`~dynshift_agents.run_options.DEFAULTS`')."""
    if threads:
        parser.add_argument("--threads", type=_count(1), default=DEFAULTS.threads,
                            help=f"torch threads (default {DEFAULTS.threads})")
    parser.add_argument("--device", type=_device, default=DEFAULTS.device,
                        help=f"torch device: {DEVICE_CHOICES} (default {DEFAULTS.device}; auto: CUDA where present)")


def _device(text: str) -> str:
    try:
        return check_device(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_options(args: argparse.Namespace) -> RunOptions:
    """The run options of ``dynshift train``'s flags."""
    return RunOptions(gradient_steps=args.gradient_steps, eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                      checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints,
                      threads=args.threads, device=args.device, progress=not args.no_progress)


def _train(args: argparse.Namespace) -> None:
    import torch

    from dynshift_agents import experiment

    torch.set_num_threads(args.threads)
    overrides = parse_overrides(args.set)
    options = run_options(args)
    if args.algorithm == "world-model":
        from dynshift_agents.algorithms import algorithm_class

        if not args.dataset:
            raise UsageError("dynshift train world-model needs --dataset")

        base = algorithm_class(args.model_for).world_model_config()
        config = dataclasses.replace(base, **overrides)
        path = experiment.world_model_path(args.dataset, config, args.seed)
        model = experiment.world_model_for(args.dataset, config, seed=args.seed, progress=not args.no_progress,
                                           log=experiment.log_every_tenth_epoch if args.no_progress else None,
                                           device=resolve_device(args.device))
        fit = model.metadata.get("fit", {})
        print(f"world model of {args.dataset} (seed {args.seed}) at {path}: elites {model.elite_index.tolist()}, "
              f"holdout MSE {fit.get('holdout_mse')}")
        return
    if args.learner:
        overrides["learner"] = args.learner
    if args.algorithm == "dara":
        if not (args.base and args.target_dataset and args.source_dataset):
            raise UsageError("dynshift train dara needs --base, --target-dataset and --source-dataset")
        from dynshift_agents.algorithms import algorithm_class

        dara_overrides = parse_overrides(args.dara_set) | ({"eta": args.eta} if args.eta is not None else {})
        from dynshift_agents.algorithms import needs_world_model

        model_config = (dataclasses.replace(algorithm_class(args.base).world_model_config(),
                                            **parse_overrides(args.world_model_set))
                        if needs_world_model(args.base) else None)
        agent = experiment.train_dara(args.base, args.target_dataset, args.source_dataset, seed=args.seed,
                                      out=args.out, dara_overrides=dara_overrides, world_model_config=model_config,
                                      overrides=overrides, options=options)
        print(f"dara + {agent.name} trained for {agent.gradient_steps} gradient steps")
        return
    if not args.dataset:
        raise UsageError(f"dynshift train {args.algorithm} needs --dataset")
    agent = experiment.train(args.algorithm, args.dataset, seed=args.seed, out=args.out, overrides=overrides,
                             world_model=args.world_model, options=options)
    print(f"{agent.name} trained for {agent.gradient_steps} gradient steps; checkpoint in "
          f"{args.out or experiment.default_run_dir(args.algorithm, args.dataset, args.seed)}/checkpoint")


def _fb_task(args: argparse.Namespace) -> None:
    import torch

    from dynshift_agents.adaptation import DARAConfig, infer_task
    from dynshift_agents.algorithms import load
    from dynshift_agents.data import load_transitions

    torch.set_num_threads(args.threads)
    agent = load(args.checkpoint, device=resolve_device(args.device))
    if agent.name != "fb":
        raise ValueError(f"{args.checkpoint} holds a {agent.name} agent; dynshift fb-task sets the task of an fb agent")
    train_id = args.train_dataset or agent.dataset_id
    if train_id is None:
        raise ValueError(f"{args.checkpoint} records no training dataset; give --train-dataset")
    train = load_transitions(train_id)
    test = load_transitions(args.test_dataset) if args.test_dataset else None
    z, report = infer_task(agent, args.mode, train, test, dara_config=DARAConfig(**parse_overrides(args.dara_set)),
                           samples=args.samples, seed=args.seed)
    agent.provenance = dict(agent.provenance) | {"task": report | {"test_dataset": args.test_dataset,
                                                                   "samples": args.samples, "seed": args.seed}}
    agent.save(args.out)
    extra = ""
    if "delta_R" in report:
        extra = (f"; classifiers' held-out accuracy (s,a,s') {report['classifiers']['sas_accuracy']:.3f}, ΔR on "
                 f"D_train {report['delta_R']['mean']:.3f} ± {report['delta_R']['std']:.3f}")
    print(f"fb task by {args.mode}: |z| = {float(z.norm()):.3f}{extra}; checkpoint in {args.out}")


def _evaluate(args: argparse.Namespace) -> None:
    import torch

    from dynshift_agents import experiment
    from dynshift_agents.algorithms import load

    torch.set_num_threads(args.threads)
    agent = load(args.checkpoint, device=resolve_device(args.device))
    env_id = args.env or agent.env_id
    kwargs = shift_kwargs(args)
    result = experiment.evaluate(agent, env_id, args.episodes, args.seed, **kwargs)
    result |= {"checkpoint": str(args.checkpoint), "algorithm": agent.name, "gradient_steps": agent.gradient_steps}
    if args.out:  # written whole or not at all
        from pathlib import Path

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".tmp").write_text(json.dumps(result, indent=1) + "\n")
        out.with_suffix(".tmp").replace(out)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{agent.name} ({agent.gradient_steps} steps) on {env_id} {json.dumps(kwargs) if kwargs else 'nominal'}: "
              f"return {result['return_mean']:.1f} ± {result['return_std']:.1f} over {args.episodes} episodes "
              f"({sum(result['lengths']) / args.episodes:.0f} steps on average, forward return "
              f"{sum(result['forward_returns']) / args.episodes:.1f}), "
              f"normalised score {result['normalised_score']:.1f} (D4RL), "
              f"{result['normalised_score_dynshift']:.1f} (DynShift references)")


def _grid(args: argparse.Namespace) -> None:
    from pathlib import Path

    from dynshift_agents import reports
    from dynshift_agents.algorithms import describe
    from dynshift_agents.evaluation import run_grid
    from dynshift_envs import load_grid

    grid = load_grid(args.grid)
    settings, grid_name = list(grid.settings), grid.name
    names = args.names or [_checkpoint_name(c) for c in args.checkpoints]
    if len(names) != len(args.checkpoints) or len(set(names)) != len(names):
        raise ValueError(f"need one distinct name per checkpoint, got {names}")
    env_id = args.env or describe(args.checkpoints[0])["env_id"]
    if grid.env_ids and env_id not in grid.env_ids:
        raise ValueError(f"grid {grid_name} applies to {', '.join(grid.env_ids)}, not {env_id}")
    out = Path(args.out or f"runs/grids/{grid_name}")
    out.mkdir(parents=True, exist_ok=True)
    policies = dict(zip(names, args.checkpoints))
    if args.fb_task in ("test", "contextual"):  # FB: the task inferred per setting from its robot's data
        from dynshift_agents.adaptation import DARAConfig
        from dynshift_agents.adaptation.contextual import per_setting_tasks

        policies = {name: per_setting_tasks(checkpoint, list(settings), args.fb_task, args.fb_test_kind,
                                            out / "tasks" / name, DARAConfig(**parse_overrides(args.fb_dara_set)),
                                            args.fb_samples, test_size=args.fb_test_size)
                    for name, checkpoint in policies.items()}
    import functools

    from dynshift_agents.algorithms import load

    records = run_grid(policies, env_id, settings, args.episodes, out / "records.jsonl", seed=args.seed,
                       loader=functools.partial(load, device=resolve_device(args.device)), workers=args.workers,
                       progress=True)
    compare = tuple(names[:2]) if len(names) >= 2 else None
    table, written = reports.write_grid_report(
        records, out, f"{grid_name} on {env_id}: {reports.count(args.episodes, 'episode')} per setting (seeds {args.seed}.."
        f"{args.seed + args.episodes - 1}), mean ± std of the return", compare)
    written.insert(0, out / "records.jsonl")
    print(table)
    print("\nwrote " + ", ".join(str(p) for p in written))


def _video(args: argparse.Namespace) -> None:
    from dynshift_agents.algorithms import load
    from dynshift_agents.video import PROTOCOLS, write_video

    steps, kwargs = args.steps, shift_kwargs(args)
    if args.protocol:
        protocol = PROTOCOLS[args.protocol]
        steps = args.steps if args.steps_given else protocol["steps"]
        kwargs = protocol["env_kwargs"] | kwargs
    if args.schedule is not None:
        kwargs["schedule"] = args.schedule
    names = args.names or [_checkpoint_name(c) for c in args.checkpoints]
    device = resolve_device(args.device)
    policies = {name: load(c, device=device) for name, c in zip(names, args.checkpoints)}
    env_id = args.env or next(iter(policies.values())).env_id
    path = write_video(policies, env_id, args.out, steps=steps, env_kwargs=kwargs, seed=args.seed,
                       width=args.size[0], height=args.size[1], every=args.every, progress=True)
    print(f"wrote {path} ({steps} steps of {env_id} {json.dumps(kwargs)})")


def _demo(args: argparse.Namespace) -> None:
    from dynshift_agents.demo import run_demo

    files = run_demo(quick=args.quick, out=args.out, workers=args.workers, threads=args.threads)
    print("\nwrote:\n" + "\n".join(f"  {f}" for f in files))


def _reference_line(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--line takes NAME=VALUE with a number, got {text!r}") from None


def _plot(args: argparse.Namespace) -> None:
    from pathlib import Path

    from dynshift_agents import reports
    from dynshift_agents.algorithms import describe
    from dynshift_agents.data import d4rl_score, load_dataset

    labels = args.names or [describe(run)["algorithm"] for run in args.runs]
    if len(labels) != len(args.runs):
        raise ValueError(f"need one name per run, got {len(labels)} names for {len(args.runs)} runs")
    runs: dict[str, list[str]] = {}
    for label, run in zip(labels, args.runs):  # runs with one label (seeds) are pooled
        runs.setdefault(label, []).append(run)
    datasets = {describe(run)["dataset_id"] for run in args.runs}
    lines = dict(args.line or [])
    if len(datasets) == 1 and args.metric == "eval/d4rl_score":  # the data's own score, for reference
        dataset_id = datasets.pop()
        record = json.loads(load_dataset(dataset_id).storage.metadata["dynshift"])
        lines[f"data ({dataset_id})"] = d4rl_score(dataset_id.split("/")[1], record["episode_returns"]["mean"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curves = reports.learning_curves(runs, out, args.metric, lines, title=args.title)
    for label, points in curves.items():
        print(f"{label}: " + ", ".join(f"{int(s)}: {m:.1f} ± {d:.1f}" for s, m, d, _ in points))
    print(f"wrote {out}")


def _sweep(args: argparse.Namespace) -> None:
    from dynshift_agents.sweep import build_plan, load_spec
    from dynshift_agents.sweep import report as sweep_report

    spec = whole = load_spec(args.spec)  # the reports always cover every seed finished so far
    if args.seeds is not None:  # one part of a study split across sessions or machines
        unknown = sorted(set(args.seeds) - set(spec.seeds))
        if unknown:
            raise UsageError(f"--seeds {unknown} not in the spec's seeds {list(spec.seeds)}")
        spec = dataclasses.replace(spec, seeds=tuple(s for s in spec.seeds if s in args.seeds))
    tasks = build_plan(spec)
    todo = [t for t in tasks if not t.is_done()]
    print(f"sweep {spec.name} ({args.spec}): {len(tasks)} tasks, {len(tasks) - len(todo)} done, {len(todo)} to run; "
          f"runs in {spec.output}, reports in {spec.results}")
    if args.dry_run:
        for task in todo:
            print(f"  {task.key}\n      {task.shell()}")
        return
    if args.report:
        files = sweep_report.write(whole)
        print(f"reports from what is finished ({len(files)} files; … in scores.md is a run not evaluated yet):\n"
              + "\n".join(f"  {p}" for p in files))
        return
    from dynshift_agents.sweep.execute import RESUME_HINT, execute

    sys.stdout.reconfigure(line_buffering=True)  # a sweep's lines reach a log (nohup, tee) as they happen
    start = time.perf_counter()
    try:
        outcomes = execute(tasks, lambda: sweep_report.write(whole), address=args.address, cpus=args.cpus,
                           progress=not args.no_progress)
    except KeyboardInterrupt:
        raise SystemExit(f"dynshift sweep: interrupted; {RESUME_HINT}") from None
    except RuntimeError as error:
        raise SystemExit(f"dynshift sweep: {error}") from None
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "diverged", "failed", "blocked")}
    print(f"\nsweep {spec.name}: ran {len(outcomes)} task(s) in {time.perf_counter() - start:.0f} s: "
          + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    for outcome in outcomes:
        if outcome.status in ("failed", "blocked"):
            print(f"  {outcome.status}: {outcome.key}: {outcome.message}" + (f" (log: {outcome.log})" if outcome.log else ""))
    files = sorted(p for p in spec.results.rglob("*") if p.is_file()) if spec.results.exists() else []
    records = sorted(spec.output.glob("*/*/seed*/eval.json")) + sorted(spec.output.glob("*/*/seed*/grid-*/records.jsonl"))
    print(f"reports ({len(files)} files):\n" + "\n".join(f"  {p}" for p in files))
    print(f"records: {len(records)} files (eval.json, grid-*/records.jsonl) under {spec.output}")
    if counts["failed"] or counts["blocked"]:
        raise SystemExit(1)


def _checkpoint_name(path: str) -> str:
    """A readable policy name from a checkpoint path: ``runs/mopo/x/seed0/checkpoint`` → ``mopo-seed0``."""
    from pathlib import Path

    from dynshift_agents.algorithms import describe

    parts = [p for p in Path(path).parts if p not in ("checkpoint", ".")]
    algorithm = describe(path)["algorithm"]
    tail = parts[-1] if parts else path
    return f"{algorithm}-{tail}" if algorithm and not tail.startswith(algorithm) else tail


def build_parser() -> argparse.ArgumentParser:
    from dynshift_envs import ROBOTS
    from dynshift_agents.data import DEFAULT_SIZES, KINDS, POLICY_SOURCES

    parser = argparse.ArgumentParser(prog="dynshift", description="Offline RL under changed dynamics.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    collect = commands.add_parser("collect", help="collect a Minari dataset with a shipped behaviour policy",
                                  description="Collect a Minari dataset (hdf5) with a shipped behaviour policy; "
                                              "an interrupted collection resumes when run again.")
    collect.add_argument("env", help=f"{', '.join(ROBOTS)} or a DynShift env id")
    collect.add_argument("kind", choices=KINDS)
    collect.add_argument("--size", type=int, help=f"transitions (defaults: {DEFAULT_SIZES}; mixed: the run's length)")
    collect.add_argument("--d4rl-size", action="store_true", help="D4RL's sizes (1M; medium-expert 2M)")
    collect.add_argument("--seed", type=int, default=0)
    collect.add_argument("--dataset-id", help="default dynshift/<env>/<kind>[-<shift>]-v0")
    collect.add_argument("--overwrite", action="store_true", help="replace an existing dataset of that id")
    collect.add_argument("--policies", choices=POLICY_SOURCES, default="nominal",
                         help="behaviour policies trained on the nominal robot (default) or on this shifted one "
                              "(DARA's source data; shipped with scripts/ship_behaviour.py --env-kwargs)")
    add_shift_options(collect)
    collect.set_defaults(run=_collect)

    subset = commands.add_parser("subset", help="the first tenth (or another fraction) of a dataset, as a dataset",
                                 description="Write the first FRACTION of a collected dataset's transitions as a new "
                                             "Minari dataset (DARA's 1T: the first tenth of the target data); each "
                                             "segment gives its own first fraction, so medium-expert data stay half "
                                             "medium, half expert.")
    subset.add_argument("dataset", help="a dataset collected with dynshift collect")
    subset.add_argument("--fraction", type=float, default=0.1, help="in (0, 1); default 0.1")
    subset.add_argument("--dataset-id", help="default: <kind>-first<fraction> in place of the kind")
    subset.add_argument("--overwrite", action="store_true")
    subset.set_defaults(run=_subset)

    from dynshift_agents.algorithms import ALGORITHMS, MODEL_BASED

    train = commands.add_parser("train", help="train a world model or an offline agent on a dataset",
                                description="Train on a local dataset; re-running the same command resumes from "
                                            "the checkpoint in --out. `dara` trains --base on --target-dataset plus "
                                            "--source-dataset with DARA's relabelled rewards.")
    train.add_argument("algorithm", choices=["world-model", "dara", *ALGORITHMS])
    train.add_argument("--dataset", help="a local Minari dataset id (not for dara)")
    train.add_argument("--base", choices=sorted(ALGORITHMS), help="dara: the learner trained on the relabelled data")
    train.add_argument("--target-dataset", help="dara: the target robot's (small) dataset")
    train.add_argument("--source-dataset", help="dara: the source robot's dataset, relabelled")
    train.add_argument("--eta", type=float, help="dara: weight of the reward change (default 0.1)")
    train.add_argument("--dara-set", action="append", default=[], metavar="KEY=VALUE",
                       help="dara: a DARA setting, e.g. --dara-set steps=2000 or model_data='\"plain\"' (JSON values)")
    train.add_argument("--world-model-set", action="append", default=[], metavar="KEY=VALUE",
                       help="dara with a model-based base: a setting of the world model fitted on both datasets")
    train.add_argument("--gradient-steps", type=_count(1), default=DEFAULTS.gradient_steps,
                       help=f"total learner steps (default {DEFAULTS.gradient_steps}, CPU scale; papers: 1-3 M)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run directory (default runs/ALGO/DATASET/seedS)")
    train.add_argument("--world-model", metavar="FILE",
                       help="a world model file (default: the dataset's cached one, fitted on first use)")
    train.add_argument("--for", dest="model_for", choices=MODEL_BASED, default="mopo",
                       help="world-model: the settings this algorithm uses (default mopo; rambo differs)")
    train.add_argument("--learner", choices=["sac", "sac-sb3", "tqc"],
                       help="model-based agents' policy learner (default sac, the fused update; sac-sb3: SB3's own)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set penalty_coef=0.5 (JSON values)")
    train.add_argument("--eval-every", type=_count(0), default=DEFAULTS.eval_every,
                       help="evaluate on the training data's env every N steps (seeded, deterministic; logged as eval/*)")
    train.add_argument("--eval-episodes", type=_count(1), default=DEFAULTS.eval_episodes,
                       help=f"episodes per periodic evaluation (default {DEFAULTS.eval_episodes})")
    train.add_argument("--checkpoint-every", type=_count(1), default=DEFAULTS.checkpoint_every,
                       help=f"gradient steps between checkpoints (default {DEFAULTS.checkpoint_every})")
    train.add_argument("--keep-checkpoints", action="store_true", default=DEFAULTS.keep_checkpoints,
                       help="keep every checkpoint as RUN/checkpoints/step_<steps>/ (hard links), to evaluate any "
                            "point of the learning curve later")
    _add_threads_and_device(train)
    train.add_argument("--no-progress", action="store_true", default=not DEFAULTS.progress)
    train.set_defaults(run=_train)

    fb_task = commands.add_parser("fb-task", help="set an FB policy's task z for a (test) robot; a new checkpoint",
                                  description="Infer z for a pre-trained FB agent and save the agent with it: from "
                                              "its training data's rewards (train), from a test robot's dataset "
                                              "(test), or from the training data's rewards plus the DARA "
                                              "correction towards the test robot (contextual; Jeen & Cullen 2024).")
    fb_task.add_argument("checkpoint")
    fb_task.add_argument("--mode", choices=["train", "test", "contextual"], default="contextual")
    fb_task.add_argument("--test-dataset", help="the test robot's data (dynshift collect with its shift)")
    fb_task.add_argument("--train-dataset", help="the pre-training data (default: the one the agent records)")
    fb_task.add_argument("--samples", type=int, help="reward-labelled transitions for z (default: all)")
    fb_task.add_argument("--dara-set", action="append", default=[], metavar="KEY=VALUE",
                         help="a setting of the train-vs-test classifiers, e.g. --dara-set steps=2000")
    fb_task.add_argument("--seed", type=int, default=0)
    _add_threads_and_device(fb_task)
    fb_task.add_argument("--out", required=True, help="the new checkpoint directory")
    fb_task.set_defaults(run=_fb_task)

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a (shifted) env")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--env", help="env id (default: the training data's)")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0, help="episode i is reset with seed S + i")
    evaluate.add_argument("--json", action="store_true")
    _add_threads_and_device(evaluate)
    evaluate.add_argument("--out", metavar="FILE", help="also write the result as JSON to FILE (atomically)")
    add_shift_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    grid = commands.add_parser("grid", help="evaluate checkpoints over a grid of dynamics settings",
                               description="Evaluate checkpoints over every setting x episode; resumable (records "
                                           "in OUT/records.jsonl); writes CSV, a markdown table with Welch's t-test "
                                           "between the first two policies, and mass x damping heatmaps.")
    grid.add_argument("checkpoints", nargs="+")
    grid.add_argument("--grid", required=True, help="mass-damping, ant-crippled, cheetah-morphology, or a JSON file "
                                                    "with a list of settings")
    grid.add_argument("--env", help="env id (default: the first checkpoint's)")
    grid.add_argument("--episodes", type=int, default=5)
    grid.add_argument("--seed", type=int, default=0)
    grid.add_argument("--names", nargs="+", help="policy names (default: from the checkpoint paths)")
    grid.add_argument("--workers", type=int, default=2, help="processes, one torch thread each (default 2)")
    grid.add_argument("--out", help="output folder (default runs/grids/GRID)")
    grid.add_argument("--fb-task", choices=["train", "test", "contextual"], default="train",
                      help="FB checkpoints: their task z per setting: from the training data (train, one z), "
                           "from each setting's test dataset (test), or the training data + ΔR towards it "
                           "(contextual)")
    grid.add_argument("--fb-test-kind", default="medium",
                      help="the kind of each setting's test dataset (default medium)")
    grid.add_argument("--fb-test-size", type=int, default=20_000,
                      help="transitions of each test dataset (its id ends -n<size>-v0; default 20000)")
    grid.add_argument("--fb-samples", type=int, help="reward-labelled transitions per z (default: all)")
    grid.add_argument("--fb-dara-set", action="append", default=[], metavar="KEY=VALUE",
                      help="a setting of the train-vs-test classifiers (--fb-task contextual)")
    _add_threads_and_device(grid, threads=False)
    grid.set_defaults(run=_grid)

    video = commands.add_parser("video", help="an mp4 of one or two policies (side by side) on a (switching) env")
    video.add_argument("checkpoints", nargs="+", help="one or two checkpoints")
    video.add_argument("--env", help="env id (default: the first checkpoint's)")
    video.add_argument("--protocol", choices=["augwm-switch"],
                       help="augwm-switch: 1500 steps, switch at step 500 to mass 0.75, damping 0.5")
    video.add_argument("--steps", type=int, default=1000)
    video.add_argument("--schedule", type=json.loads, help='mid-episode switches as JSON, e.g. \'[{"step": 500, "mass": 0.75}]\'')
    video.add_argument("--seed", type=int, default=0)
    video.add_argument("--names", nargs="+")
    video.add_argument("--size", type=int, nargs=2, default=[480, 480], metavar=("WIDTH", "HEIGHT"))
    video.add_argument("--every", type=int, default=1, help="one frame per this many steps")
    video.add_argument("--out", default="runs/videos/video.mp4")
    add_shift_options(video)
    _add_threads_and_device(video, threads=False)
    video.set_defaults(run=_video)

    plot = commands.add_parser("plot", help="learning curves of training runs (their periodic evaluations)",
                               description="Draw eval/d4rl_score (logged with dynshift train --eval-every) against "
                                           "gradient steps; runs with the same name (default: their algorithm) are "
                                           "seeds, drawn as a mean with a ±1 std band; the dataset's own score is a "
                                           "dashed line.")
    plot.add_argument("runs", nargs="+", help="run directories (with progress.csv and checkpoint/)")
    plot.add_argument("--names", nargs="+", help="a label per run (default: its algorithm)")
    plot.add_argument("--metric", default="eval/d4rl_score", help="a logged column (default eval/d4rl_score)")
    plot.add_argument("--line", action="append", metavar="NAME=VALUE", type=_reference_line,
                      help="a horizontal reference line, e.g. --line BC=42.4 (repeatable)")
    plot.add_argument("--title")
    plot.add_argument("--out", default="curves.png")
    plot.set_defaults(run=_plot)

    demo = commands.add_parser("demo", help="data → world model → MOPO vs AugWM → grid → switch video (9–13 min)",
                               description="The whole path on this machine: collect HalfCheetah mixed data, fit the "
                                           "world model, train MOPO and AugWM briefly, evaluate both on a 3x3 mass x "
                                           "damping grid and render the switch test. Re-running reuses what is done.")
    demo.add_argument("--quick", action="store_true", help="tiny budgets, under two minutes")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--threads", type=int, default=2)
    demo.set_defaults(run=_demo)

    sweep = commands.add_parser("sweep", help="run a study from its spec file (TOML) on Ray, locally or on a cluster",
                                description="Build the study's graph (collect → world model → train → evaluate / "
                                            "grid → report) and run what is not done on Ray, one CPU and one torch "
                                            "thread per task. Interrupted, it resumes when run again; nothing "
                                            "finished is run twice. Needs the sweep extra: pip install -e \".[sweep]\".")
    sweep.add_argument("spec", help="a sweep spec, e.g. experiments/model-free.toml")
    sweep.add_argument("--address", help="a running Ray cluster (e.g. ray://head:10001 or auto); default: start Ray here")
    sweep.add_argument("--cpus", type=int, help="CPUs to use (default: all of this machine or the cluster)")
    mode = sweep.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print what is done and what would run, run nothing")
    mode.add_argument("--report", action="store_true",
                      help="write the reports from what is finished so far (curves include runs still training), "
                           "run nothing; ray is not needed")
    sweep.add_argument("--seeds", type=int, nargs="+",
                       help="run only these of the spec's seeds (a study split into parts); the reports then "
                            "cover these seeds, and a later run of the whole spec reuses their runs")
    sweep.add_argument("--no-progress", action="store_true")
    sweep.set_defaults(run=_sweep)

    datasets = commands.add_parser("datasets", help="list local datasets with size, returns and dynamics")
    datasets.add_argument("prefix", nargs="?", help="only ids starting with this, e.g. dynshift/hopper")
    datasets.add_argument("--json", action="store_true")
    datasets.set_defaults(run=_datasets)
    return parser


def main(argv: list[str] | None = None) -> None:
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        # headless: MuJoCo must render offscreen (EGL) unless told otherwise, decided before mujoco is imported
        os.environ.setdefault("MUJOCO_GL", "egl")
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.steps_given = "--steps" in argv
    from dynshift_agents.algorithms import DivergenceError

    try:
        args.run(args)
    except DivergenceError as error:
        print(f"dynshift {args.command}: diverged (the papers' '—'): {error}", file=sys.stderr)
        raise SystemExit(3) from None
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as error:
        print(f"dynshift {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

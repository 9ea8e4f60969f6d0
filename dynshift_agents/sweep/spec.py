"""A sweep spec: one TOML file that says what a study runs, validated into typed dataclasses.

A study is datasets × algorithms × seeds at one budget, plus the evaluations and reports it needs::

    name = "model-free"
    output = "runs/results/model-free"      # runs, logs and records (relative to the spec's folder)
    results = "docs/results/model-free"     # tables and figures (default: <output>/reports)
    seeds = [0, 1, 2]

    [budget]
    gradient_steps = 50_000
    eval_every = 10_000                     # learning curves: periodic evaluation into the logs

    [[datasets]]
    id = "dynshift/halfcheetah/medium-v0"   # collected with default settings when missing
    [[datasets]]
    id = "dynshift/ant/mixed-nocontact-v0"
    collect = { robot = "ant", kind = "mixed", env_kwargs = { include_cfrc_ext_in_observation = false } }

    [algorithms.bc]                         # the label is the table's column; algorithm defaults to it
    [algorithms.AugWM-LM]
    algorithm = "augwm"
    set = { augmentation = "das", context = true }

    [world_model]
    seed = 0                                # one model per dataset shared by every run seed

    [[grids]]
    name = "mass-damping"                   # a standard grid, or a JSON file of settings
    episodes = 3
    compare = ["AugWM-LM", "MOPO"]

Every key is checked: an unknown key, algorithm, config field, grid or dataset kind, or a budget
that is not positive, is a :class:`SpecError` naming the valid choices, raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynshift_agents.run_options import DEFAULTS, RunOptions, check_device

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SpecError(ValueError):
    """A sweep spec that cannot run; the message names the bad key and what is valid."""


@dataclass(frozen=True)
class Budget:
    """The ``[budget]`` table: the run options every training run of the study shares (their meaning and
    defaults are :class:`~dynshift_agents.run_options.RunOptions`', as on the command line)."""

    gradient_steps: int
    """Learner updates per run (CPU scale: 10⁴–10⁵; the papers: 1–3 M)."""
    eval_every: int = DEFAULTS.eval_every
    """Evaluate every N gradient steps into the run's log (learning curves); 0 = never."""
    eval_episodes: int = DEFAULTS.eval_episodes
    """Episodes per periodic evaluation (seeded, deterministic, on the training data's robot)."""
    checkpoint_every: int = DEFAULTS.checkpoint_every
    """Gradient steps between checkpoints (an interrupted run resumes from the last)."""
    keep_checkpoints: bool = DEFAULTS.keep_checkpoints
    """Keep every checkpoint (``RUN/checkpoints/step_<steps>/``, hard links) to evaluate any point of
    the learning curves later."""


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    """A Minari dataset id, e.g. ``dynshift/hopper/medium-v0``."""
    robot: str
    """The robot that collects it when it is missing (from the id unless given)."""
    kind: str
    """random, medium, expert, medium-expert or mixed (from the id unless given)."""
    size: int | None = None
    """Transitions to collect (default: the kind's default size)."""
    seed: int = 0
    """Collection seed."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """The robot's env keywords (its dynamics shift), as ``dynshift collect --env-kwargs``."""
    policies: str = "nominal"
    """The behaviour policies: ``nominal`` (trained on the nominal robot) or ``own`` (trained on this shifted
    robot: DARA's source data), as ``dynshift collect --policies``."""
    subset_of: str | None = None
    """Made by ``dynshift subset`` from this dataset of the spec (DARA's ``1T``), not collected."""
    fraction: float = 0.1
    """With ``subset_of``: the first fraction of its transitions."""


@dataclass(frozen=True)
class AlgorithmSpec:
    label: str
    """The name in tables and run directories (``<output>/<dataset>/<label lower-case>/seed<k>``)."""
    algorithm: str
    """A ``dynshift train`` algorithm."""
    set: dict[str, Any] = field(default_factory=dict)
    """Config overrides, as ``dynshift train --set KEY=VALUE``."""
    datasets: tuple[str, ...] | None = None
    """Only these of the spec's datasets (default: all)."""
    base: str | None = None
    """``algorithm = "dara"``: the learner trained on the relabelled data (``set`` is its config)."""
    source: str | None = None
    """``algorithm = "dara"``: the source robot's dataset (one of the spec's); the row's dataset is the target."""
    dara: dict[str, Any] = field(default_factory=dict)
    """``algorithm = "dara"``: DARA's settings (``eta = 0`` trains on the plain union: "1T+10S w/o Aug.")."""

    @property
    def directory(self) -> str:
        return self.label.lower()


@dataclass(frozen=True)
class WorldModelSpec:
    seed: int | None = None
    """One world model per dataset with this seed, shared by all run seeds; ``None``: each run's own
    seed (as the papers do)."""
    set: dict[str, Any] = field(default_factory=dict)
    """World-model config overrides, e.g. ``{precision = "fp32"}``."""


@dataclass(frozen=True)
class EvaluationSpec:
    episodes: int = 10
    """Final evaluation of every run at nominal dynamics (``eval.json``); 0 = none."""
    seed: int = 0
    """Episode i is reset with seed + i."""


@dataclass(frozen=True)
class GridSpec:
    name: str
    """A standard grid (``dynshift_envs.GRIDS``) or the stem of ``file``."""
    settings: tuple[dict[str, Any], ...]
    """The dynamics settings, resolved from the grid or the file."""
    episodes: int = 3
    """Episodes per setting and run."""
    seed: int = 0
    datasets: tuple[str, ...] | None = None
    """Only runs on these datasets (default: all)."""
    algorithms: tuple[str, ...] | None = None
    """Only these labels (default: all)."""
    compare: tuple[str, str] | None = None
    """Two labels marked with Welch's test per setting in the table."""
    baselines: tuple[tuple[str, str], ...] = ()
    """(label, baseline) pairs compared by per-seed grid averages below the table."""
    file: str | None = None
    """The JSON file the settings came from (a list of settings, or {"settings": [...]})."""
    description: str = ""
    label: str = ""
    """The grid's name in folders and reports (default: ``name``); two entries of one grid differ by it."""
    fb_task: str = "train"
    """FB runs: their task z per setting — from the training data (``train``), from each setting's test
    dataset (``test``) or the training data plus ΔR towards it (``contextual``); other runs ignore it."""
    fb_test_kind: str = "medium"
    """FB runs with ``test``/``contextual``: the kind of each setting's test dataset (collected by the sweep)."""
    fb_test_size: int = 20_000
    """FB runs with ``test``/``contextual``: transitions of each setting's test dataset."""


@dataclass(frozen=True)
class ReportsSpec:
    scores: bool = True
    """``scores.md``: final normalised score per dataset and label, seeds as mean ± std and each."""
    curves: bool = True
    """``curves-<dataset>.png`` per dataset (when ``budget.eval_every`` > 0)."""
    grids: bool = True
    """Per dataset and grid: ``records.csv``, ``table.md`` and the heatmaps."""
    dara: bool = True
    """``dara.md`` when the spec has DARA arms (η > 0): the paper's table (10T, 1T, 1T+10S without and with
    DARA), Welch's test over seeds, and the classifiers' accuracies and Δr."""
    references: tuple[tuple[Path, str], ...] = ()
    """(spec file, label) pairs: the final score of that label in that study, on the same dataset
    (mean over its seeds), drawn as a horizontal line on the learning curves — BC's line on a
    model-based study's curves."""


@dataclass(frozen=True)
class SweepSpec:
    name: str
    path: Path | None
    """The spec file (relative paths in it are relative to its folder)."""
    output: Path
    results: Path
    seeds: tuple[int, ...]
    budget: Budget
    datasets: tuple[DatasetSpec, ...]
    algorithms: tuple[AlgorithmSpec, ...]
    world_model: WorldModelSpec = WorldModelSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    grids: tuple[GridSpec, ...] = ()
    reports: ReportsSpec = ReportsSpec()
    description: str = ""
    device: str = DEFAULTS.device
    """The torch device of every training run, evaluation and grid (``cpu``, ``cuda``, ``cuda:N``, ``auto``)."""

    def algorithms_for(self, dataset_id: str) -> list[AlgorithmSpec]:
        return [a for a in self.algorithms if a.datasets is None or dataset_id in a.datasets]


# ---------------------------------------------------------------------------------------------------
# Reading and checking


def _keys(where: str, table: Any, allowed: dict[str, type | tuple[type, ...]], required: tuple[str, ...] = ()) -> dict:
    """``table`` as a dict whose keys are all in ``allowed`` and whose values have the allowed types."""
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table, got {type(table).__name__}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise SpecError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in {where}; "
                        f"valid keys: {', '.join(allowed)}")
    missing = [k for k in required if k not in table]
    if missing:
        raise SpecError(f"{where} needs {', '.join(map(repr, missing))}")
    for key, value in table.items():
        types = allowed[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            names = " or ".join(t.__name__ for t in _as_tuple(types))
            raise SpecError(f"{where}.{key} must be {names}, got {value!r}")
    return table


def _as_tuple(types) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _positive(where: str, value: int, zero: bool = False) -> int:
    if value < 0 or (value == 0 and not zero):
        raise SpecError(f"{where} must be {'≥ 0' if zero else 'positive'}, got {value}")
    return value


def _strings(where: str, values: list, choices: list[str]) -> tuple[str, ...]:
    for value in values:
        if value not in choices:
            raise SpecError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
    return tuple(values)


def _dataset(where: str, table: dict) -> DatasetSpec:
    from dynshift_envs import ROBOTS

    from dynshift_agents.data import KINDS, POLICY_SOURCES
    from dynshift_agents.data.catalog import robot_and_kind

    table = _keys(where, table, {"id": str, "collect": dict, "subset": dict}, required=("id",))
    if "subset" in table:
        if "collect" in table:
            raise SpecError(f"{where}: a dataset is collected or a subset, not both")
        subset = _keys(f"{where}.subset", table["subset"], {"of": str, "fraction": float}, required=("of",))
        fraction = subset.get("fraction", 0.1)
        if not 0 < fraction < 1:
            raise SpecError(f"{where}.subset.fraction must be in (0, 1), got {fraction}")
        robot, kind = robot_and_kind(subset["of"])
        return DatasetSpec(table["id"], robot or "", kind or "", subset_of=subset["of"], fraction=fraction)
    collect = _keys(f"{where}.collect", table.get("collect", {}),
                    {"robot": str, "kind": str, "size": int, "seed": int, "env_kwargs": dict, "policies": str})
    robot, kind = robot_and_kind(table["id"])
    robot, kind = collect.get("robot", robot), collect.get("kind", kind)
    if robot not in ROBOTS:
        raise SpecError(f"{where}: cannot tell the robot of {table['id']!r} ({robot!r}); set collect.robot to one of "
                        f"{', '.join(ROBOTS)}")
    if kind not in KINDS:
        raise SpecError(f"{where}: cannot tell the kind of {table['id']!r} ({kind!r}); set collect.kind to one of "
                        f"{', '.join(KINDS)}")
    if "size" in collect:
        _positive(f"{where}.collect.size", collect["size"])
    policies = collect.get("policies", "nominal")
    _strings(f"{where}.collect.policies", [policies], list(POLICY_SOURCES))
    if policies == "own" and not collect.get("env_kwargs"):
        raise SpecError(f"{where}.collect: policies = \"own\" is for a shifted robot; give env_kwargs (its shift)")
    return DatasetSpec(table["id"], robot, kind, collect.get("size"), collect.get("seed", 0),
                       collect.get("env_kwargs", {}), policies)


def _algorithm(label: str, table: dict, dataset_ids: list[str]) -> AlgorithmSpec:
    from dynshift_agents.algorithms import ALGORITHMS

    where = f"algorithms.{label}"
    table = _keys(where, table, {"algorithm": str, "set": dict, "datasets": list, "base": str, "source": str,
                                 "dara": dict})
    name = table.get("algorithm", label)
    if name == "dara":
        return _dara(where, label, table, dataset_ids)
    if {"base", "source", "dara"} & set(table):
        raise SpecError(f"{where}: base, source and dara are for algorithm = \"dara\"")
    if name not in ALGORITHMS:
        raise SpecError(f"{where}: unknown algorithm {name!r}; choose one of {', '.join(sorted(ALGORITHMS))}"
                        + ("" if "algorithm" in table else " (or name it with algorithm = ...)"))
    datasets = _strings(f"{where}.datasets", table["datasets"], dataset_ids) if "datasets" in table else None
    overrides = dict(table.get("set", {}))
    for dataset_id in datasets or dataset_ids:  # config fields (and per-dataset presets) checked now
        try:
            ALGORITHMS[name].config_class.for_dataset(dataset_id, **overrides)
        except (TypeError, ValueError) as error:
            raise SpecError(f"{where}.set: {error}") from None
    return AlgorithmSpec(label, name, overrides, datasets)


def _dara(where: str, label: str, table: dict, dataset_ids: list[str]) -> AlgorithmSpec:
    """DARA in front of ``base``: the row's dataset is the target, ``source`` the source."""
    from dynshift_agents.adaptation import DARAConfig
    from dynshift_agents.algorithms import ALGORITHMS

    for key in ("base", "source"):
        if key not in table:
            raise SpecError(f"{where}: algorithm = \"dara\" needs {key}")
    if table["base"] not in ALGORITHMS:
        raise SpecError(f"{where}.base: unknown algorithm {table['base']!r}; choose one of {', '.join(sorted(ALGORITHMS))}")
    _strings(f"{where}.source", [table["source"]], dataset_ids)
    try:
        DARAConfig(**table.get("dara", {}))
    except (TypeError, ValueError) as error:
        names = [f.name for f in dataclasses.fields(DARAConfig)]
        raise SpecError(f"{where}.dara: {error}; DARA's settings: {', '.join(names)}") from None
    datasets = _strings(f"{where}.datasets", table["datasets"], dataset_ids) if "datasets" in table else None
    if table["source"] in (datasets or dataset_ids):
        raise SpecError(f"{where}: the source {table['source']!r} is also one of its targets; restrict the targets "
                        "with datasets = [...]")
    overrides = dict(table.get("set", {}))
    for dataset_id in datasets or dataset_ids:
        try:
            ALGORITHMS[table["base"]].config_class.for_dataset(dataset_id, **overrides)
        except (TypeError, ValueError) as error:
            raise SpecError(f"{where}.set: {error}") from None
    return AlgorithmSpec(label, "dara", overrides, datasets, table["base"], table["source"], dict(table.get("dara", {})))


def _world_model(table: dict, algorithms: list[AlgorithmSpec]) -> WorldModelSpec:
    from dynshift_agents.algorithms import algorithm_class

    table = _keys("world_model", table, {"seed": int, "set": dict})
    overrides = dict(table.get("set", {}))
    for spec in algorithms:
        cls = algorithm_class(spec.base if spec.algorithm == "dara" else spec.algorithm)
        if hasattr(cls, "world_model_config"):
            try:
                dataclasses.replace(cls.world_model_config(), **overrides)
            except TypeError:
                names = [f.name for f in dataclasses.fields(cls.world_model_config())]
                raise SpecError(f"world_model.set: unknown world-model settings in {sorted(overrides)}; valid: "
                                f"{', '.join(names)}") from None
    return WorldModelSpec(table.get("seed"), overrides)


def _grid(where: str, table: dict, base: Path, dataset_ids: list[str], labels: list[str]) -> GridSpec:
    from dynshift_envs import GRIDS, load_grid

    from dynshift_agents.data import KINDS

    table = _keys(where, table, {"name": str, "file": str, "episodes": int, "seed": int, "datasets": list,
                                 "algorithms": list, "compare": list, "baselines": list, "label": str,
                                 "fb_task": str, "fb_test_kind": str, "fb_test_size": int})
    fb_task = table.get("fb_task", "train")
    if fb_task not in ("train", "test", "contextual"):
        raise SpecError(f"{where}.fb_task: {fb_task!r} is not one of 'train', 'test', 'contextual'")
    _strings(f"{where}.fb_test_kind", [table.get("fb_test_kind", "medium")], list(KINDS))
    _positive(f"{where}.fb_test_size", table.get("fb_test_size", 20_000))
    if ("name" in table) == ("file" in table):
        raise SpecError(f"{where} needs one of name (a standard grid: {', '.join(GRIDS)}) or file (a JSON list of "
                        "settings)")
    if "name" in table:
        if table["name"] not in GRIDS:
            raise SpecError(f"{where}: unknown grid {table['name']!r}; standard grids: {', '.join(GRIDS)} "
                            "(or give file = a JSON list of settings)")
        grid = GRIDS[table["name"]]
        name, settings, description, file = grid.name, grid.settings, grid.description, None
        for dataset_id in table.get("datasets", dataset_ids):
            _check_env(where, grid, dataset_id)
    else:
        path = (base / table["file"]).resolve()
        if not path.exists():
            raise SpecError(f"{where}: grid file {path} does not exist (standard grids: {', '.join(GRIDS)})")
        try:
            grid = load_grid(str(path))
        except ValueError as error:
            raise SpecError(f"{where}: {error}") from None
        name, settings, description, file = grid.name, grid.settings, grid.description, str(path)
    episodes = _positive(f"{where}.episodes", table.get("episodes", 3))
    datasets = _strings(f"{where}.datasets", table["datasets"], dataset_ids) if "datasets" in table else None
    algorithms = _strings(f"{where}.algorithms", table["algorithms"], labels) if "algorithms" in table else None
    shown = list(algorithms or labels)
    compare = None
    if "compare" in table:
        if len(table["compare"]) != 2:
            raise SpecError(f"{where}.compare takes two labels, got {table['compare']!r}")
        compare = _strings(f"{where}.compare", table["compare"], shown)
    baselines = []
    for pair in table.get("baselines", []):
        if not isinstance(pair, list) or len(pair) != 2:
            raise SpecError(f"{where}.baselines takes [label, baseline] pairs, got {pair!r}")
        baselines.append(_strings(f"{where}.baselines", pair, shown))
    return GridSpec(name, settings, episodes, table.get("seed", 0), datasets, algorithms, compare, tuple(baselines),
                    file, description, table.get("label", name), fb_task, table.get("fb_test_kind", "medium"),
                    table.get("fb_test_size", 20_000))


def _reference(where: str, table: Any, base: Path) -> tuple[Path, str]:
    """A reference line: ``{ spec = "model-free.toml", label = "bc" }``, the spec checked now."""
    table = _keys(where, table, {"spec": str, "label": str}, required=("spec", "label"))
    path = (base / table["spec"]).resolve()
    other = load_spec(path)
    labels = [a.label for a in other.algorithms]
    if table["label"] not in labels:
        raise SpecError(f"{where}: {path.name} has no label {table['label']!r}; its labels: {', '.join(labels)}")
    return path, table["label"]


def _check_env(where: str, grid, dataset_id: str) -> None:
    from dynshift_envs import get_robot

    from dynshift_agents.data.catalog import robot_and_kind

    robot, _ = robot_and_kind(dataset_id)
    try:
        env_id = get_robot(robot).env_id
    except ValueError:
        return
    if env_id not in grid.env_ids:
        raise SpecError(f"{where}: grid {grid.name} applies to {', '.join(grid.env_ids)}, not {dataset_id} ({env_id}); "
                        "restrict it with datasets = [...]")


TOP_LEVEL = {"name": str, "description": str, "output": str, "results": str, "seeds": list, "budget": dict,
             "datasets": list, "algorithms": dict, "world_model": dict, "evaluation": dict, "grids": list,
             "reports": dict, "device": str}


def parse_spec(values: dict[str, Any], path: str | os.PathLike | None = None) -> SweepSpec:
    """A checked :class:`SweepSpec` from the TOML tables ``values`` (of the file ``path``, whose folder
    relative paths are resolved against; the working directory otherwise)."""
    base = Path(path).resolve().parent if path is not None else Path.cwd()
    values = _keys("the spec", values, TOP_LEVEL, required=("name", "output", "budget", "datasets", "algorithms"))
    budget = _keys("budget", values["budget"], {"gradient_steps": int, "eval_every": int, "eval_episodes": int,
                                                "checkpoint_every": int, "keep_checkpoints": bool},
                    required=("gradient_steps",))
    try:
        RunOptions.of(**budget)
    except ValueError as error:
        raise SpecError(f"budget: {error}") from None
    device = values.get("device", DEFAULTS.device)
    try:
        check_device(device)
    except ValueError as error:
        raise SpecError(f"device: {error}") from None
    seeds = values.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise SpecError(f"seeds must be a non-empty list of distinct integers ≥ 0, got {seeds!r}")
    if not values["datasets"]:
        raise SpecError("datasets must list at least one dataset ([[datasets]] with id = ...)")
    datasets = [_dataset(f"datasets[{i}]", table) for i, table in enumerate(values["datasets"])]
    dataset_ids = [d.id for d in datasets]
    if len(set(dataset_ids)) != len(dataset_ids):
        raise SpecError(f"datasets lists an id twice: {dataset_ids}")
    for i, dataset in enumerate(datasets):
        if dataset.subset_of is not None:
            _strings(f"datasets[{i}].subset.of", [dataset.subset_of], [d for d in dataset_ids if d != dataset.id])
    if not values["algorithms"]:
        raise SpecError("algorithms must name at least one ([algorithms.LABEL])")
    algorithms = [_algorithm(label, table, dataset_ids) for label, table in values["algorithms"].items()]
    directories = [a.directory for a in algorithms]
    if len(set(directories)) != len(directories):
        raise SpecError(f"algorithm labels must differ in more than case (their run folders): {directories}")
    evaluation = _keys("evaluation", values.get("evaluation", {}), {"episodes": int, "seed": int})
    _positive("evaluation.episodes", evaluation.get("episodes", 10), zero=True)
    grids = [_grid(f"grids[{i}]", table, base, dataset_ids, [a.label for a in algorithms])
             for i, table in enumerate(values.get("grids", []))]
    if len({g.label for g in grids}) != len(grids):
        raise SpecError(f"grids names one grid twice: {[g.label for g in grids]} (give each a label)")
    reports = _keys("reports", values.get("reports", {}), {"scores": bool, "curves": bool, "grids": bool, "dara": bool,
                                                           "references": list})
    reports["references"] = tuple(_reference(f"reports.references[{i}]", r, base)
                                  for i, r in enumerate(reports.get("references", [])))
    output = (base / values["output"]).resolve()
    results = (base / values["results"]).resolve() if "results" in values else output / "reports"
    return SweepSpec(values["name"], Path(path).resolve() if path is not None else None, output, results, tuple(seeds),
                     Budget(**budget), tuple(datasets), tuple(algorithms), _world_model(values.get("world_model", {}),
                                                                                           algorithms),
                     EvaluationSpec(**evaluation), tuple(grids), ReportsSpec(**reports), values.get("description", ""),
                     device)


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check the TOML sweep spec at ``path``."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"no sweep spec at {path}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path} is not valid TOML: {error}") from None
    return parse_spec(values, path)

"""``dynshift sweep``: specs checked before anything runs, a tiny sweep on a local Ray with 2 CPUs,
interrupted and resumed, against its own commands run one by one."""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dynshift_agents.sweep import SpecError, build_plan, load_spec, parse_spec

STEPS, EPISODES = 400, 2
TINY = {"net_arch": [16, 16], "batch_size": 32}


def spec_values(output: str = "out") -> dict:
    return {
        "name": "tiny", "output": output, "seeds": [0, 1],
        "budget": {"gradient_steps": STEPS, "checkpoint_every": 100, "eval_every": 200, "eval_episodes": EPISODES},
        "evaluation": {"episodes": EPISODES},
        "datasets": [{"id": "dynshift/hopper/random-v0", "collect": {"size": 1000}}],
        "algorithms": {"bc": {"set": dict(TINY)}, "td3bc": {"set": dict(TINY)}},
        "grids": [{"file": "grid.json", "episodes": 1, "compare": ["bc", "td3bc"], "baselines": [["td3bc", "bc"]]}],
    }


def write_spec(folder: Path, values: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "grid.json").write_text(json.dumps([{"mass": 0.5}, {"mass": 1.5}]))
    lines = []  # a small TOML writer for these tables (tomllib only reads)

    def value(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    for key in ("name", "output", "seeds"):
        lines.append(f"{key} = {value(values[key])}")
    for table in ("budget", "evaluation"):
        lines += [f"[{table}]"] + [f"{k} = {value(v)}" for k, v in values[table].items()]
    for dataset in values["datasets"]:
        lines += ["[[datasets]]"] + [f"{k} = {value(v)}" for k, v in dataset.items()]
    for label, table in values["algorithms"].items():
        lines += [f"[algorithms.{label}]"] + [f"{k} = {value(v)}" for k, v in table.items()]
    for grid in values["grids"]:
        lines += ["[[grids]]"] + [f"{k} = {value(v)}" for k, v in grid.items()]
    path = folder / "sweep.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def sweep_command(path: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "dynshift_agents", "sweep", str(path), *options]


# ---------------------------------------------------------------------------------------------------
# Bad specs fail before anything runs, naming the choices


@pytest.mark.parametrize("change, message", [
    (lambda v: v["algorithms"].update(nope={}), "unknown algorithm 'nope'; choose one of"),
    (lambda v: v.update(seed=[0]), "unknown key 'seed' in the spec; valid keys: name"),
    (lambda v: v["budget"].update(gradient_step=5), "unknown key 'gradient_step' in budget; valid keys: gradient_steps"),
    (lambda v: v["grids"].append({"name": "mass-dumping"}), "unknown grid 'mass-dumping'; standard grids: mass-damping"),
    (lambda v: v["grids"].append({"name": "ant-crippled"}), "grid ant-crippled applies to DynShift/Ant-v0, not"),
    (lambda v: v["budget"].update(gradient_steps=-5), "budget: gradient_steps must be an integer ≥ 1, got -5"),
    (lambda v: v["algorithms"]["bc"]["set"].update(learning_rat=1e-3), "unknown BCConfig fields ['learning_rat']"),
    (lambda v: v["datasets"][0]["collect"].update(kind="medum"), "set collect.kind to one of random, medium"),
    (lambda v: v["grids"][0].update(compare=["bc", "cql"]), "'cql' is not one of 'bc', 'td3bc'"),
    (lambda v: v.update(seeds=[0, 0]), "seeds must be a non-empty list of distinct integers"),
    (lambda v: v.update(reports={"references": [{"spec": "sweep.toml", "label": "cql"}]}),
     "sweep.toml has no label 'cql'; its labels: bc, td3bc"),
    (lambda v: v["algorithms"].update(d={"algorithm": "dara", "base": "bc"}), 'algorithm = "dara" needs source'),
    (lambda v: v["algorithms"].update(d={"algorithm": "dara", "base": "bc", "source": "dynshift/hopper/x-v0"}),
     "algorithms.d.source: 'dynshift/hopper/x-v0' is not one of 'dynshift/hopper/random-v0'"),
    (lambda v: v["algorithms"].update(bc={"base": "bc"}), 'base, source and dara are for algorithm = "dara"'),
    (lambda v: v["datasets"].append({"id": "dynshift/hopper/random-first0p1-v0", "subset": {"of": "nope"}}),
     "datasets[1].subset.of: 'nope' is not one of 'dynshift/hopper/random-v0'"),
    (lambda v: v["datasets"][0]["collect"].update(policies="mine"), "'mine' is not one of 'nominal', 'own'"),
    (lambda v: v["datasets"][0]["collect"].update(policies="own"), 'policies = "own" is for a shifted robot'),
])
def test_a_bad_spec_names_the_bad_key_and_the_choices(tmp_path, change, message):
    values = spec_values()
    write_spec(tmp_path, values)
    change(values)
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(values, tmp_path / "sweep.toml")


def test_a_bad_spec_file_runs_nothing(tmp_path):
    values = spec_values()
    path = write_spec(tmp_path, values)
    path.write_text(path.read_text().replace('name = "tiny"', 'name = "tiny"\nseed = 1'))
    result = subprocess.run(sweep_command(path), capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown key 'seed' in the spec; valid keys:" in result.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------------
# A tiny sweep on a local Ray with 2 CPUs, interrupted and resumed


def _runs(output: Path) -> list[Path]:
    return sorted(output.glob("dynshift__hopper__random-v0/*/seed*"))


def _steps(run: Path) -> int:
    meta = run / "checkpoint" / "agent.json"
    return json.loads(meta.read_text())["gradient_steps"] if meta.exists() else 0


def _snapshot(output: Path) -> dict:
    """What is on disk, read directly from the files (not through the plan)."""
    state = {}
    for run in _runs(output):
        name = f"{run.parent.name} {run.name}"
        records = run / "grid-grid" / "records.jsonl"
        state[name] = {"steps": _steps(run), "meta_mtime": (run / "checkpoint" / "agent.json").stat().st_mtime_ns
                       if _steps(run) else None, "eval": (run / "eval.json").exists(),
                       "grid_records": len(records.read_text().splitlines()) if records.exists() else 0}
    return state


@pytest.fixture(scope="module")
def interrupted(store, tmp_path_factory):
    """The tiny sweep, interrupted (SIGINT) once its first run has finished training (while others
    are still training: the interrupt always lands mid-sweep, however loaded the machine), then resumed."""
    pytest.importorskip("ray", reason="the sweep extra (pip install -e '.[sweep]') is not installed")
    folder = tmp_path_factory.mktemp("sweep")
    path = write_spec(folder, spec_values())
    output = folder / "out"
    # SIGINT back to its default in the sweep: a test run started in the background of a
    # non-interactive shell inherits it ignored, and the interrupt would never arrive
    first = subprocess.Popen(sweep_command(path, "--cpus", "2", "--no-progress"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    def a_run_finished() -> bool:
        try:
            return any(_steps(run) >= STEPS for run in _runs(output))
        except (FileNotFoundError, json.JSONDecodeError):  # a checkpoint being renamed into place
            return False

    while not a_run_finished() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    interrupted_output = first.communicate(timeout=120)[0]
    before = _snapshot(output)
    # each command is stopped by its Ray worker, or by the kernel once that worker exits (its
    # PR_SET_PDEATHSIG): seconds after the driver when Ray's own shutdown crashes (seen once in CI,
    # a C-level backtrace in the output), so the commands get a short grace before they count as left
    grace = time.monotonic() + 15
    while (leftover := subprocess.run(["pgrep", "-f", str(output)], capture_output=True,
                                      text=True).stdout.split()) and time.monotonic() < grace:
        time.sleep(0.5)
    partial = subprocess.run(sweep_command(path, "--report"), capture_output=True, text=True)
    partial_scores = (output / "reports" / "scores.md").read_text() if partial.returncode == 0 else partial.stderr
    dry_run = subprocess.run(sweep_command(path, "--dry-run"), capture_output=True, text=True, check=True).stdout
    resumed = subprocess.run(sweep_command(path, "--cpus", "2", "--no-progress"), capture_output=True, text=True,
                             timeout=600)
    return {"path": path, "output": output, "first_code": first.returncode, "first_output": interrupted_output,
            "before": before, "leftover": leftover, "partial_scores": partial_scores, "dry_run": dry_run, "resumed": resumed, "after": _snapshot(output)}


def test_an_interrupted_sweep_stops_its_commands_and_resumes_training_each_run_exactly_once(interrupted):
    assert interrupted["first_code"] not in (0, None), interrupted["first_output"]
    # the driver's own line, flushed before Ray is asked to stop (a CI run once lost the final
    # message to a crash with a C-level backtrace at that point; the whole output is shown on failure)
    assert re.search(r"interrupted: stopping \d+ running task\(s\); run the same command again",
                     interrupted["first_output"]), interrupted["first_output"]
    assert interrupted["leftover"] == [], "commands of the interrupted sweep still running"
    before, after = interrupted["before"], interrupted["after"]
    assert any(s["steps"] < STEPS for s in before.values()) or any(not s["eval"] for s in before.values())
    assert interrupted["resumed"].returncode == 0, interrupted["resumed"].stdout + interrupted["resumed"].stderr
    assert len(after) == 4
    for name, state in after.items():
        assert state["steps"] == STEPS and state["eval"], name
        assert state["grid_records"] == 2, name  # 2 settings × 1 episode: none lost, none repeated
        if before.get(name, {}).get("steps") == STEPS:  # finished before the interrupt: never trained again
            assert state["meta_mtime"] == before[name]["meta_mtime"], name
    for run in _runs(interrupted["output"]):
        with (run / "progress.csv").open() as f:
            steps = [row["time/gradient_steps"] for row in csv.DictReader(f)]
        assert len(steps) == len(set(steps)), f"{run}: logged steps repeated after resuming: {steps}"
        records = [json.loads(line) for line in (run / "grid-grid" / "records.jsonl").read_text().splitlines()]
        assert sorted((r["setting_index"], r["episode"]) for r in records) == [(0, 0), (1, 0)]


def test_a_sweep_stopped_with_kill_stops_its_commands_and_says_how_to_resume(store, tmp_path):
    """SIGTERM (``kill``, how a sweep under nohup is stopped) takes Ctrl-C's path: the running
    commands are stopped, and the driver says so and how to go on."""
    pytest.importorskip("ray", reason="the sweep extra (pip install -e '.[sweep]') is not installed")
    values = spec_values()
    values["budget"]["gradient_steps"] = 50_000  # still training when the signal comes
    path = write_spec(tmp_path, values)
    output = tmp_path / "out"
    sweep = subprocess.Popen(sweep_command(path, "--cpus", "2", "--no-progress"), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not any(p.stat().st_size for p in output.glob("*/*/seed*/train.log")) and sweep.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the training commands are running
    sweep.terminate()
    printed = sweep.communicate(timeout=120)[0]
    assert sweep.returncode not in (0, None), printed
    assert re.search(r"interrupted: stopping [12] running task\(s\); run the same command again", printed), printed
    assert subprocess.run(["pgrep", "-f", str(output)], capture_output=True, text=True).stdout == ""


def test_dry_run_lists_exactly_the_missing_tasks(interrupted):
    before = interrupted["before"]
    missing = {"report"}
    for algorithm in ("bc", "td3bc"):
        for seed in (0, 1):
            state = before.get(f"{algorithm} seed{seed}", {"steps": 0, "eval": False, "grid_records": 0})
            tail = f"dynshift/hopper/random-v0 {algorithm} seed{seed}"
            missing |= {f"train {tail}"} if state["steps"] < STEPS else set()
            missing |= {f"evaluate {tail}"} if not state["eval"] else set()
            missing |= {f"grid grid {tail}"} if state["grid_records"] < 2 else set()
    listed = {line.strip() for line in interrupted["dry_run"].splitlines()[1:] if not line.startswith("      ")}
    assert listed == missing
    assert f"14 tasks, {14 - len(missing)} done, {len(missing)} to run" in interrupted["dry_run"]
    ran = {line.split(None, 1)[1].rsplit(" (", 1)[0] for line in interrupted["resumed"].stdout.splitlines()
           if line.startswith("done ")}
    assert ran == missing


def test_a_study_kept_without_its_checkpoints_trains_nothing_again(interrupted, tmp_path):
    """The finished tiny sweep copied without its checkpoints (a study's records committed to a
    repository): nothing is left to train. Without one run's grid records, that run trains again for
    its grid; with the budget raised in the spec, every run trains on and is evaluated again."""
    study = tmp_path / "study"
    shutil.copytree(interrupted["path"].parent, study)
    for checkpoint in study.glob("out/*/*/seed*/checkpoint"):
        shutil.rmtree(checkpoint)

    def to_run(values: dict | None = None) -> set[str]:
        path = write_spec(study, values) if values else study / "sweep.toml"
        return {t.key for t in build_plan(load_spec(path)) if t.kind != "report" and not t.is_done()}

    assert to_run() == set()
    (study / "out" / "dynshift__hopper__random-v0" / "bc" / "seed0" / "grid-grid" / "records.jsonl").unlink()
    assert to_run() == {"train dynshift/hopper/random-v0 bc seed0", "grid grid dynshift/hopper/random-v0 bc seed0"}
    raised = spec_values()
    raised["budget"]["gradient_steps"] = 2 * STEPS
    runs = [f"dynshift/hopper/random-v0 {a} seed{s}" for a in ("bc", "td3bc") for s in (0, 1)]
    assert to_run(raised) == ({f"train {r}" for r in runs} | {f"evaluate {r}" for r in runs}
                              | {"grid grid dynshift/hopper/random-v0 bc seed0"})


def test_reports_written_mid_sweep_mark_what_is_not_evaluated_and_are_not_final(interrupted):
    """`dynshift sweep --report` after the interrupt: a score for each run with its final evaluation,
    "…" for the others; the report task stays to do (the dry-run test lists it) and the resumed sweep
    writes the final table, without "…"."""
    row = next(line for line in interrupted["partial_scores"].splitlines() if line.startswith("| dynshift/hopper"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    for i, algorithm in enumerate(("bc", "td3bc")):  # per label: mean ± std, then the seeds
        seeds = [s.strip() for s in cells[3 + 2 * i].split(",")]
        for seed, shown in enumerate(seeds):
            evaluated = interrupted["before"].get(f"{algorithm} seed{seed}", {}).get("eval", False)
            assert (shown != "…") == evaluated, (algorithm, seed, row)
    assert "… one not evaluated yet" in interrupted["partial_scores"]
    final = (interrupted["output"] / "reports" / "scores.md").read_text()
    assert "…" not in final


def test_the_sweep_writes_what_its_commands_write_one_by_one(interrupted, tmp_path):
    """Same records (final evaluations, grid episodes) and the same scores table as running the
    plan's commands one after another, in this process, into another output."""
    from dynshift_agents.cli import main
    from dynshift_agents.sweep import report

    path = write_spec(tmp_path, spec_values(output="by-hand"))
    spec = load_spec(path)
    for task in build_plan(spec):
        if task.command is not None and not task.is_done():
            main(task.command)
    report.write(spec)
    swept, by_hand = interrupted["output"], tmp_path / "by-hand"
    for run in _runs(swept):
        twin = by_hand / run.relative_to(swept)
        assert json.loads((run / "eval.json").read_text())["returns"] == json.loads((twin / "eval.json").read_text())["returns"]
        key = lambda r: (r["setting_index"], r["episode"], r["return"], r["length"])  # noqa: E731
        records = [sorted(map(key, map(json.loads, (r / "grid-grid" / "records.jsonl").read_text().splitlines())))
                   for r in (run, twin)]
        assert records[0] == records[1]
    assert (swept / "reports" / "scores.md").read_text() == (by_hand / "reports" / "scores.md").read_text()
    assert (swept / "reports" / "dynshift__hopper__random-v0" / "grid" / "table.md").read_text() == \
        (by_hand / "reports" / "dynshift__hopper__random-v0" / "grid" / "table.md").read_text()
    shutil.rmtree(by_hand)


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].glob("experiments/*.toml")), ids=lambda p: p.stem)
def test_the_shipped_specs_are_valid_and_their_commands_parse(path):
    from dynshift_agents.cli import build_parser

    spec = load_spec(path)
    tasks = build_plan(spec)
    assert len({t.key for t in tasks}) == len(tasks)
    parser = build_parser()
    for task in tasks:
        assert all(dep in {t.key for t in tasks[:tasks.index(task)]} for dep in task.deps), task.key
        if task.command is not None:
            parser.parse_args(task.command)


def test_a_run_that_diverges_is_recorded_once_and_not_retried(store, tmp_path):
    """TD3+BC with a |Q| limit it passes at once: the run is marked diverged ("—" in the table), its
    evaluation is skipped, the sweep finishes, and a second run of the sweep finds nothing to do."""
    pytest.importorskip("ray", reason="the sweep extra (pip install -e '.[sweep]') is not installed")
    values = spec_values(output="unstable")
    values.update(seeds=[0], grids=[])
    values["algorithms"] = {"td3bc": {"set": dict(TINY) | {"q_limit": 1e-3}}}
    path = write_spec(tmp_path, values)
    first = subprocess.run(sweep_command(path, "--cpus", "1", "--no-progress"), capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    run = tmp_path / "unstable" / "dynshift__hopper__random-v0" / "td3bc" / "seed0"
    assert "diverged at gradient step" in (run / "diverged").read_text()
    assert not (run / "eval.json").exists()
    assert "2 diverged" in first.stdout and "failed" not in first.stdout  # the run and its moot evaluation
    scores = (tmp_path / "unstable" / "reports" / "scores.md").read_text()
    assert "| dynshift/hopper/random-v0 | 1.1 | — | — |" in scores
    again = subprocess.run(sweep_command(path, "--dry-run"), capture_output=True, text=True, check=True).stdout
    assert "4 tasks, 4 done, 0 to run" in again


def test_dara_and_1t_in_a_spec(tmp_path):
    """DARA's protocol as a spec: a 1T subset made from the target data, DARA runs with their source."""
    values = spec_values()
    values["datasets"] += [{"id": "dynshift/hopper/random-first0p1-v0",
                            "subset": {"of": "dynshift/hopper/random-v0", "fraction": 0.1}},
                           {"id": "dynshift/hopper/random-mass1p5-v0",
                            "collect": {"size": 1000, "env_kwargs": {"mass": 1.5}}},
                           {"id": "dynshift/hopper/medium-mass1p5-own-v0",
                            "collect": {"size": 1000, "env_kwargs": {"mass": 1.5}, "policies": "own"}}]
    values["algorithms"] = {"bc": {"set": dict(TINY), "datasets": ["dynshift/hopper/random-first0p1-v0"]},
                            "bc-dara": {"algorithm": "dara", "base": "bc", "set": dict(TINY), "dara": {"eta": 0.2},
                                        "source": "dynshift/hopper/random-mass1p5-v0",
                                        "datasets": ["dynshift/hopper/random-first0p1-v0"]}}
    values["grids"] = []
    tasks = {t.key: t for t in build_plan(load_spec(write_spec(tmp_path, values)))}
    subset = tasks["subset dynshift/hopper/random-first0p1-v0"]
    assert subset.deps == ("collect dynshift/hopper/random-v0",)
    assert subset.command == ["subset", "dynshift/hopper/random-v0", "--fraction", "0.1",
                              "--dataset-id", "dynshift/hopper/random-first0p1-v0"]
    train = tasks["train dynshift/hopper/random-first0p1-v0 bc-dara seed0"]
    assert set(train.deps) == {"subset dynshift/hopper/random-first0p1-v0", "collect dynshift/hopper/random-mass1p5-v0"}
    assert train.command[:7] == ["train", "dara", "--base", "bc", "--target-dataset",
                                 "dynshift/hopper/random-first0p1-v0", "--source-dataset"]
    assert "eta=0.2" in train.command
    own = tasks["collect dynshift/hopper/medium-mass1p5-own-v0"].command  # DARA's source data: own policies
    assert own[:3] == ["collect", "hopper", "medium"] and own[own.index("--policies") + 1] == "own"
    assert "--policies" not in tasks["collect dynshift/hopper/random-mass1p5-v0"].command


def dara_spec_values():
    """A spec's values with DARA's datasets (1T of random-v0, a heavier robot's source) on three seeds, and a
    DARA arm of BC on them (its algorithms left for the test to set)."""
    values = spec_values()
    values["seeds"] = [0, 1, 2]
    values["datasets"] += [{"id": "dynshift/hopper/random-first0p1-v0",
                            "subset": {"of": "dynshift/hopper/random-v0", "fraction": 0.1}},
                           {"id": "dynshift/hopper/random-mass1p5-v0", "collect": {"size": 1000, "env_kwargs": {"mass": 1.5}}}]
    return values, {"algorithm": "dara", "base": "bc", "source": "dynshift/hopper/random-mass1p5-v0",
                    "datasets": ["dynshift/hopper/random-first0p1-v0"]}


def test_the_dara_report_is_the_papers_table_read_off_the_spec(tmp_path):
    """dara.md: per base learner and target, 10T (the dataset 1T was cut from), 1T, 1T+10S at η = 0 and with
    DARA, arrows against the column to the left, Welch over seeds, and the classifiers' report; a DARA arm per
    η (an η study) gets a row each, sharing the other columns."""
    from scipy import stats

    from dynshift_agents.adaptation.dara import DARA
    from dynshift_agents.sweep import report
    from dynshift_agents.sweep.layout import run_dir

    values, dara_arm = dara_spec_values()
    values["algorithms"] = {"bc": {"datasets": ["dynshift/hopper/random-v0", "dynshift/hopper/random-first0p1-v0"]},
                            "bc-union": dara_arm | {"dara": {"eta": 0.0}}, "bc-dara": dict(dara_arm),
                            "td3bc-dara": dara_arm | {"base": "td3bc"},  # no plain td3bc, no union: empty cells
                            "bc-dara-eta0p5": dara_arm | {"dara": {"eta": 0.5}}}  # a second η: a row of its own
    values["grids"] = []
    spec = load_spec(write_spec(tmp_path, values))
    arms = {a.label: a for a in spec.algorithms}
    scores = {("dynshift/hopper/random-v0", "bc"): [50.0, 60.0, 55.0],
              ("dynshift/hopper/random-first0p1-v0", "bc"): [20.0, 30.0, 25.0],
              ("dynshift/hopper/random-first0p1-v0", "bc-union"): [30.0, 32.0, 28.0],
              ("dynshift/hopper/random-first0p1-v0", "bc-dara"): [40.0, 44.0, 39.0],
              ("dynshift/hopper/random-first0p1-v0", "bc-dara-eta0p5"): [45.0, 46.0, 44.0]}
    for (dataset, label), per_seed in scores.items():
        for seed, score in enumerate(per_seed):
            run = run_dir(spec, dataset, arms[label], seed)
            run.mkdir(parents=True)
            (run / "eval.json").write_text(json.dumps({"normalised_score": score}))
    for seed in range(2):  # the third seed's classifiers not written yet: means over what exists
        dara = DARA(11, 3)
        dara.report = {"sas_accuracy": 0.8 + 0.1 * seed, "sa_accuracy": 0.6,
                       "delta_r": {"mean": 0.5, "std": 1.0, "quantiles": {"0.05": -1.0, "0.95": 2.0 + seed},
                                   "clipped_fraction": 0.0}}
        dara.save(run_dir(spec, "dynshift/hopper/random-first0p1-v0", arms["bc-dara"], seed) / "dara.pt")

    rows = report.dara_rows(spec)
    assert [(r.base, r.full.label, r.full_dataset, r.alone.label, r.union.label, r.dara.label) for r in rows[:1]] == [
        ("bc", "bc", "dynshift/hopper/random-v0", "bc", "bc-union", "bc-dara")]
    assert (rows[1].base, rows[1].full, rows[1].alone, rows[1].union) == ("td3bc", None, None, None)
    assert report.outputs(spec)[-1] == spec.results / "dara.md"
    table = report.dara_table(spec)
    p = stats.ttest_ind([40.0, 44.0, 39.0], [30.0, 32.0, 28.0], equal_var=False).pvalue
    assert (f"| bc | dynshift/hopper/random-first0p1-v0 | dynshift/hopper/random-mass1p5-v0 | 0.1 | 55.0 ± 5.0 | "
            f"25.0 ± 5.0 ↓ | 30.0 ± 2.0 ↑ | 41.0 ± 2.6 ↑ | +11.0 | **{p:.3f}** |") in table  # sample std (n − 1)
    assert "| td3bc | dynshift/hopper/random-first0p1-v0 | dynshift/hopper/random-mass1p5-v0 | 0.1 |  |  |  | … |  |  |" in table
    assert "| bc | dynshift/hopper/random-first0p1-v0 | 1T+10S DARA (η = 0.1) | 40.0 | 44.0 | 39.0 |" in table
    assert "| bc | dynshift/hopper/random-first0p1-v0 | 1T+10S DARA (η = 0.5) | 45.0 | 46.0 | 44.0 |" in table
    assert table.count("| bc | dynshift/hopper/random-first0p1-v0 | 1T | 20.0 | 30.0 | 25.0 |") == 1  # shared by both η
    assert "| bc | dynshift/hopper/random-first0p1-v0 | 0.1 | 2 | 0.850 | 0.600 | 0.500 ± 1.000 | -1.00 … 2.50 | 0.0000 |" in table
    with pytest.raises(SpecError, match="reports.dara must be bool"):
        parse_spec(values | {"reports": {"dara": "yes"}})


def test_the_dara_report_follows_the_learning_curves(tmp_path):
    """dara.md repeats DARA's table at every periodic evaluation of the runs' logs (progress.csv): the mean
    over the seeds that have reached a step, Welch's test at each step; rows without an evaluation are skipped."""
    from scipy import stats

    from dynshift_agents import reports
    from dynshift_agents.sweep import report
    from dynshift_agents.sweep.layout import run_dir

    values, dara_arm = dara_spec_values()
    values["algorithms"] = {"bc": {"datasets": ["dynshift/hopper/random-first0p1-v0"]},
                            "bc-union": dara_arm | {"dara": {"eta": 0.0}}, "bc-dara": dict(dara_arm)}
    values["grids"] = []
    values["budget"] = values["budget"] | {"eval_every": 10, "eval_episodes": 3}
    spec = load_spec(write_spec(tmp_path, values))
    arms = {a.label: a for a in spec.algorithms}
    curves = {"bc": [(10.0, 30.0), (20.0, 31.0), (10.0, 32.0)],   # (score at step 10, at step 20) per seed
              "bc-union": [(5.0, 6.0), (7.0, 8.0), (9.0, None)],  # seed 2 has not reached step 20
              "bc-dara": [(1.0, 7.0), (2.0, 6.96), (3.0, None)]}  # at step 20: 0.02 below the union
    for label, per_seed in curves.items():
        for seed, (first, second) in enumerate(per_seed):
            run = run_dir(spec, "dynshift/hopper/random-first0p1-v0", arms[label], seed)
            run.mkdir(parents=True)
            rows = ["time/gradient_steps,train/q_mean,eval/d4rl_score", "5,1.0,", f"10,2.0,{first}", "15,3.0,"]
            (run / "progress.csv").write_text("\n".join(rows + ([f"20,4.0,{second}"] if second is not None else [])) + "\n")
    assert reports.evaluations(run) == {10.0: 3.0}
    assert reports.evaluations(tmp_path / "nowhere") == {}

    table = report.dara_table(spec)
    assert "env seeds 10,000–10,002" in table
    p10 = stats.ttest_ind([1.0, 2.0, 3.0], [5.0, 7.0, 9.0], equal_var=False).pvalue
    assert (f"| bc | dynshift/hopper/random-first0p1-v0 | 0.1 | 10 |  | 13.3 ± 5.8 | 7.0 ± 2.0 ↓ | 2.0 ± 1.0 ↓ | -5.0 | "
            f"**{p10:.3f}** |") in table
    p20 = stats.ttest_ind([7.0, 6.96], [6.0, 8.0], equal_var=False).pvalue
    assert (f"| bc | dynshift/hopper/random-first0p1-v0 | 0.1 | 20 |  | 31.0 ± 1.0 | 7.0 ± 1.4 ↓ | 7.0 ± 0.0 ↓ | +0.0 | "
            f"{p20:.3f} |") in table  # a difference that rounds to zero is not printed as "-0.0"
    assert "| 0.1 | 5 |" not in table and "| 0.1 | 15 |" not in table
    curve_files = [f.name for f in report.outputs(spec) if f.name.startswith("curves-")]
    assert "curves-dynshift__hopper__random-first0p1-v0.png" in curve_files
    assert "curves-dynshift__hopper__random-mass1p5-v0.png" not in curve_files  # a source only: no curves


def test_an_fb_grid_with_a_task_per_setting_collects_each_settings_test_data():
    spec = load_spec(Path(__file__).parents[1] / "experiments" / "fb-halfcheetah.toml")
    tasks = {t.key: t for t in build_plan(spec)}
    tests = sorted(k for k in tasks if k.startswith("collect ") and "-n" in k)
    assert len(tests) == 27  # 9 settings × test sets of 2 000, 20 000 and 200 000 transitions
    grid = tasks["grid md3-c-contextual dynshift/halfcheetah/diverse-v0 fb seed0"]
    assert grid.command[grid.command.index("--fb-task") + 1] == "contextual"
    assert sum(d.endswith("-n20000-v0") for d in grid.deps) == 9
    assert "grid md3-b-test dynshift/halfcheetah/mixed-v0 MOPO seed0" not in tasks  # FB only
    plain = tasks["grid md3-a-train dynshift/halfcheetah/mixed-v0 MOPO seed0"]
    assert "--fb-task" not in plain.command


def test_seeds_option_runs_one_part_of_a_study(tmp_path, capsys, monkeypatch):
    """`dynshift sweep SPEC --seeds 1 --dry-run` plans only seed 1's runs (the study split into
    parts); a seed the spec does not have is refused with the spec's seeds named."""
    from dynshift_agents.cli import main

    path = write_spec(tmp_path, spec_values())
    main(["sweep", str(path), "--seeds", "1", "--dry-run"])
    listed = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("  train ")]
    assert listed == ["train dynshift/hopper/random-v0 bc seed1", "train dynshift/hopper/random-v0 td3bc seed1"]
    with pytest.raises(SystemExit, match=re.escape("--seeds [7] not in the spec's seeds [0, 1]")):
        main(["sweep", str(path), "--seeds", "1", "7", "--dry-run"])
    from dynshift_agents.sweep import report

    written = []
    monkeypatch.setattr(report, "write", lambda spec: written.append(spec.seeds) or [])
    main(["sweep", str(path), "--seeds", "1", "--report"])
    assert written == [(0, 1)]  # a part's reports cover every seed of the study, not the part's own


def test_reports_name_the_seeds_they_hold():
    """A report written while a study is split into parts names the seeds it holds, and the spec's
    seeds beside them until every one is finished (grid tables and curve titles)."""
    from types import SimpleNamespace

    from dynshift_agents.sweep.report import seeds_label

    spec = SimpleNamespace(seeds=(0, 1, 2))
    assert seeds_label(spec, [[0, 1], [1, 0]]) == "seeds [0, 1] of [0, 1, 2]"
    assert seeds_label(spec, [[0, 1], [2]]) == "seeds [0, 1, 2]"
    assert seeds_label(SimpleNamespace(seeds=(2, 0, 1)), [[2, 1, 0]]) == "seeds [0, 1, 2]"

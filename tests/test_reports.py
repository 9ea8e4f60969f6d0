"""Reports: Welch's test, tables with significance marks, heatmaps, and the dynshift grid command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dynshift_agents import cli, reports


def fake_records(policy, means, episodes=5, spread=1.0):
    rng = np.random.default_rng(len(policy))
    records = []
    for index, ((m, d), mean) in enumerate(means.items()):
        for e in range(episodes):
            records.append({"policy": policy, "env_id": "x", "setting_index": index, "setting": {"mass": m, "damping": d},
                            "episode": e, "seed": e, "return": float(mean + spread * rng.normal()), "length": 1000})
    return records


def test_welch_matches_the_formula():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 4.0, 6.0, 8.0, 10.0])
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    from scipy.stats import t as student

    assert reports.welch(a, b) == pytest.approx(2 * student.sf(abs(t), dof))
    assert np.isnan(reports.welch(a[:1], b))


def test_table_marks_significant_differences_only():
    settings = {(0.5, 0.5): 100.0, (1.0, 1.0): 100.0}
    better = {(0.5, 0.5): 150.0, (1.0, 1.0): 100.5}
    records = fake_records("mopo", settings) + fake_records("augwm", better)
    table = reports.markdown_table(records, compare=("mopo", "augwm"))
    lines = table.splitlines()
    assert lines[0] == "| setting | augwm | mopo | p (Welch) |"
    assert "*" in lines[2] and "*" not in lines[3]  # 150 vs 100 is significant, 100.5 vs 100 is not
    assert lines[2].split("|")[2].strip().endswith("*")  # on the better policy
    assert lines[-1].startswith("| **average**")
    with pytest.raises(ValueError, match="cannot compare"):
        reports.markdown_table(records, compare=("mopo", "rambo"))


def test_heatmap_png(tmp_path):
    means = {(m, d): 10 * m + d for m in (0.5, 1.0, 1.5) for d in (0.5, 1.0)}
    reports.heatmap(fake_records("p", means), "p", tmp_path / "h.png")
    import imageio.v3 as iio

    image = iio.imread(tmp_path / "h.png")
    assert image.ndim == 3 and image.shape[0] > 300
    with pytest.raises(ValueError, match="mass"):
        reports.heatmap([r | {"setting": {"crippled_legs": [0]}} for r in fake_records("p", means)], "p", tmp_path / "x.png")


def test_grid_command_end_to_end(tmp_path, monkeypatch, capsys):
    from dynshift_agents.algorithms import AugWM, AugWMConfig, MOPO, MOPOConfig
    from dynshift_agents.data import collect, load_transitions
    from dynshift_agents.world_model import WorldModel, WorldModelConfig

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "store"))
    torch.set_num_threads(1)
    data = load_transitions(collect("hopper", "random", size=800, progress=False).spec.dataset_id)
    model = WorldModel(11, 3, WorldModelConfig(hidden=(16,), weight_decay=(0, 0), max_epochs=1))
    model.fit(data.obs, data.actions, data.rewards, data.next_obs)
    tiny = dict(rollout_batch_size=32, rollout_freq=20, net_arch=(16, 16), batch_size=32)
    MOPO("DynShift/Hopper-v0", model, data, MOPOConfig(**tiny)).learn(20, progress_bar=False, checkpoint_dir=tmp_path / "m")
    AugWM("DynShift/Hopper-v0", model, data, AugWMConfig(**tiny, context=True)).learn(
        20, progress_bar=False, checkpoint_dir=tmp_path / "a")
    grid_file = tmp_path / "small.json"
    grid_file.write_text(json.dumps([{"mass": m, "damping": d} for m in (0.5, 1.5) for d in (0.5, 1.5)]))
    out = tmp_path / "grid"
    cli.main(["grid", str(tmp_path / "m"), str(tmp_path / "a"), "--names", "mopo", "augwm", "--grid", str(grid_file),
              "--episodes", "2", "--workers", "1", "--out", str(out)])
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 4 * 2
    assert (out / "records.csv").exists() and (out / "heatmap-mopo.png").exists() and (out / "heatmap-augwm.png").exists()
    assert "Welch" in (out / "table.md").read_text()
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["grid", str(tmp_path / "m"), "--grid", "nonsense"])
    assert exit_info.value.code == 2 and "'nonsense'" in capsys.readouterr().err


def test_video_frame_count_and_size(tmp_path):
    import imageio.v3 as iio

    from dynshift_agents.behaviour import load_policy
    from dynshift_agents.video import PROTOCOLS, write_video

    medium = load_policy("halfcheetah", "medium")
    schedule = {"schedule": [{"step": 10, "mass": 0.75, "damping": 0.5}]}
    path = write_video({"a": medium, "b": medium}, "DynShift/HalfCheetah-v0", tmp_path / "v.mp4", steps=30,
                       env_kwargs=schedule, width=160, height=128, every=2)
    frames = iio.imread(path)
    assert frames.shape == (16, 128, 320, 3)  # the first frame plus one per two steps; two policies side by side
    assert PROTOCOLS["augwm-switch"]["steps"] == 1500
    with pytest.raises(ValueError, match="16"):
        write_video({"a": medium}, "DynShift/HalfCheetah-v0", tmp_path / "x.mp4", steps=2, width=100)


def test_the_command_renders_on_a_headless_machine_without_mujoco_gl(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY", "PYOPENGL_PLATFORM")}
    script = ("from dynshift_agents import cli; cli.main(['datasets', 'none/']); "
              "from dynshift_agents.behaviour import load_policy; from dynshift_agents.video import write_video; "
              f"write_video({{'a': load_policy('halfcheetah', 'medium')}}, 'DynShift/HalfCheetah-v0', {str(tmp_path / 'v.mp4')!r}, "
              "steps=2, width=64, height=64)")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "v.mp4").stat().st_size > 0


def test_demo_quick_runs_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "store"))
    monkeypatch.setenv("DYNSHIFT_HOME", str(tmp_path / "home"))
    cli.main(["demo", "--quick", "--out", str(tmp_path / "demo"), "--workers", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert "wrote:" in out and "5/5 video" in out
    for name in ("grid/table.md", "grid/records.csv", "grid/heatmap-MOPO.png", "grid/heatmap-AugWM.png", "switch.mp4"):
        assert (tmp_path / "demo" / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["quick"] and len(summary["files"]) == 7


def test_seed_averages_and_their_comparison():
    records = [{"policy": f"{alg}/seed{seed}", "setting_index": i, "setting": {"mass": m}, "episode": e,
                "return": base + 10 * seed + i + e} for alg, base in (("A", 100.0), ("B", 0.0)) for seed in range(3)
               for i, m in enumerate((0.5, 1.5)) for e in range(2)]
    averages = reports.seed_averages(records)
    # per setting the mean over episodes 0, 1 is base + 10·seed + i + 0.5; over settings i = 0, 1: + 0.5 more
    assert averages["A"] == {f"A/seed{s}": 101.0 + 10 * s for s in range(3)}
    text = reports.seed_comparison(records, ("A", "B"))
    assert "A 111.0 ± 10.0 (101.0, 111.0, 121.0)" in text and "B 11.0 ± 10.0" in text
    assert f"{reports.welch(np.array([101.0, 111, 121]), np.array([1.0, 11, 21])):.3g}" in text
    with pytest.raises(ValueError, match="algorithms in the records"):
        reports.seed_comparison(records, ("A", "C"))


def test_counts_read_in_the_right_number():
    from dynshift_agents.reports import count

    assert (count(1, "episode"), count(5, "episode"), count(0, "seed")) == ("1 episode", "5 episodes", "0 seeds")


def test_video_draws_the_floor_under_a_robot_far_from_the_origin(monkeypatch):
    """A cheetah 100 m down the track (beyond Gymnasium's 40 m floor plane) still runs on a checker
    floor in the video, and the simulated model's floor is untouched (a render-time change only);
    without the following floor the same frame's ground is empty."""
    import mujoco

    from dynshift_agents.behaviour import load_policy
    from dynshift_agents.video import _Runner

    def ground(follow: bool) -> np.ndarray:
        runner = _Runner(load_policy("halfcheetah", "medium"), "a", "DynShift/HalfCheetah-v0", {}, 0, 10, 128, 128)
        if not follow:
            monkeypatch.setattr(runner, "_follow", lambda: None)
        env = runner.env.unwrapped
        env.data.qpos[0] = 100.0
        mujoco.mj_forward(env.model, env.data)
        image = runner.frame()[96:].astype(float)  # below the robot: the floor, if drawn
        np.testing.assert_array_equal(env.model.geom_pos[env.model.geom("floor").id], 0.0)
        runner.close()
        return image

    assert ground(follow=True).std() > 5 * ground(follow=False).std()


def test_seed_summary_script_reads_runs_and_tests_seeds_against_the_baseline(tmp_path, script, monkeypatch, capsys):
    """scripts/seed_summary.py: per-seed scores and grid averages from eval.json and grid records, then
    Welch's test over seeds against the baseline (the figures of docs/results/augwm.md come from it)."""
    import sys

    for algorithm, scores, offset in (("mopo", (30.0, 32.0), 100.0), ("augwm", (10.0, 11.0), 0.0)):
        for seed, score in enumerate(scores):
            run = tmp_path / algorithm / f"seed{seed}"
            (run / "grid-md").mkdir(parents=True)
            (run / "eval.json").write_text(json.dumps({"normalised_score": score}))
            records = [{"setting_index": i, "return": offset + i + seed} for i in range(3) for _ in range(2)]
            (run / "grid-md" / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(sys, "argv", ["seed_summary.py", str(tmp_path), "--baseline", "mopo", "--above", "50"])
    script("seed_summary").main()
    out = capsys.readouterr().out
    assert "augwm seed 1: score 11.0; md: average 2, 0 above 50, beats mopo on 0 of 3" in out
    assert "mopo seed 0: score 30.0; md: average 101, 3 above 50" in out
    assert "augwm score: 10.5 ± 0.7 over seeds [0, 1]; Welch's p against mopo" in out
    assert "mopo md: 101.5 ± 0.7 over seeds [0, 1]\n" in out

    # the paper's form: a row per dataset, bold with * and the side where Welch's p < 0.05
    monkeypatch.setattr(sys, "argv", ["seed_summary.py", str(tmp_path), "--markdown", "md", "--columns", "mopo", "augwm"])
    script("seed_summary").main()
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| dataset | mopo | augwm |"
    assert table[2] == f"| {tmp_path.name} | 102 ± 1 (2) | **2 ± 1 (2) *↓** |"
    # --by: a grid's settings grouped by a field (a list by its length), one row per group
    for algorithm in ("mopo", "augwm"):
        for seed in (0, 1):
            legs = [{"crippled_legs": [0]}, {"crippled_legs": [1]}, {"crippled_legs": [0, 1]}]
            records = [{"setting_index": i, "setting": legs[i], "return": (100.0 if algorithm == "mopo" else 0.0) + i + seed}
                       for i in range(3)]
            (tmp_path / algorithm / f"seed{seed}" / "grid-md" / "records.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(sys, "argv", ["seed_summary.py", str(tmp_path), "--markdown", "md", "--by", "crippled_legs"])
    script("seed_summary").main()
    table = capsys.readouterr().out.splitlines()
    assert table[2].startswith(f"| {tmp_path.name}, crippled_legs = 1 | 101 ± 1 (2) |")  # settings 0 and 1
    assert table[3].startswith(f"| {tmp_path.name}, crippled_legs = 2 | 102 ± 1 (2) |")  # setting 2
    (tmp_path / "augwm" / "seed1" / "eval.json").unlink()  # one seed: no spread, and no test
    monkeypatch.setattr(sys, "argv", ["seed_summary.py", str(tmp_path), "--markdown", "score"])
    script("seed_summary").main()
    assert capsys.readouterr().out.splitlines()[2] == f"| {tmp_path.name} | 31.0 ± 1.4 (2) | 10.0 (1) |"
    monkeypatch.setattr(sys, "argv", ["seed_summary.py", str(tmp_path), "--markdown", "score", "--columns", "mopo", "sac"])
    with pytest.raises(SystemExit, match="sac"):
        script("seed_summary").main()

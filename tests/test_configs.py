"""Every setting of every algorithm is checked against its valid range when its config is built (issue 38):
an out-of-range value is refused with the field named, from Python and (exit 2, before any data is
read) from the command line."""

from __future__ import annotations

import pytest

from dynshift_agents.algorithms import ALGORITHMS
from dynshift_agents.checks import Range

# (algorithm, field, a value outside its range): what a user could type with --set
OUT_OF_RANGE = [
    ("bc", "batch_size", 0), ("bc", "learning_rate", -1e-3), ("bc", "gamma", 1.0), ("bc", "tau", 0.0),
    ("bc", "net_arch", (256, 0)), ("bc", "q_limit", 0),
    ("td3bc", "policy_delay", 0), ("td3bc", "alpha", -2.5), ("td3bc", "policy_noise", -0.1),
    ("iql", "expectile", 2.0), ("iql", "expectile", 0.0), ("iql", "beta", -1.0), ("iql", "max_weight", 0.0),
    ("cql", "n_actions", 0), ("cql", "conservative_weight", -5.0), ("cql", "ent_coef", "automatic"),
    ("cql", "ent_coef", "auto_-1"), ("cql", "actor_learning_rate", 0.0),
    ("bcq", "lmbda", 1.5), ("bcq", "phi", -0.05), ("bcq", "act_samples", 0), ("bcq", "vae_hidden", ()),
    ("bear", "kernel", "cosine"), ("bear", "warmup_steps", -1), ("bear", "sigma", 0.0), ("bear", "mmd_samples", 0),
    ("bear", "epsilon", -0.05),
    ("bracp", "alpha", 0.0), ("bracp", "kl_samples", 0), ("bracp", "behaviour_steps", -1), ("bracp", "ent_coef", -1.0),
    ("bracp", "log_std_range", (0.0, -5.0)),
    ("awr", "td_lambda", 2.0), ("awr", "value_refresh", 0), ("awr", "beta", 0.0),
    ("mopo", "rollout_freq", 0), ("mopo", "rollout_batch_size", 0), ("mopo", "rollout_length", 0),
    ("mopo", "retain_rounds", 0), ("mopo", "real_ratio", 1.5), ("mopo", "penalty_coef", -1.0),
    ("mopo", "learner", "ppo"), ("mopo", "ent_coef_max", 0.0), ("mopo", "rollout_freq", 2.5),
    ("augwm", "z_low", 0.0), ("augwm", "z_low", 2.0), ("augwm", "augmentation", "flip"),
    ("rambo", "adversary_batch_size", 0), ("rambo", "adversary_weight", -3e-4), ("rambo", "bc_steps", -1),
    ("rambo", "adversary_reduction", "max"), ("rambo", "rollout_freq", 0),
    ("fb", "z_mix_ratio", 2.0), ("fb", "gamma", 1.0), ("fb", "batch_size", 1), ("fb", "tau", 0.0),
    ("fb", "forward_hidden", (0,)), ("fb", "inference_samples", 0),
]


@pytest.mark.parametrize("algorithm, field, value", OUT_OF_RANGE)
def test_an_out_of_range_setting_is_refused_naming_the_field(algorithm, field, value):
    config_class = ALGORITHMS[algorithm].config_class
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        config_class(**{field: value})


def _declared(config_class) -> dict[str, Range]:
    ranges: dict[str, Range] = {}
    for cls in reversed(config_class.__mro__):
        ranges |= cls.__dict__.get("RANGES", {})
    return ranges


def _outside(valid: Range):
    """A value just outside ``valid`` (or of the wrong kind)."""
    if valid.sizes:
        return (0,)
    if valid.low is not None:
        return valid.low if valid.low_open else valid.low - 1
    if valid.high is not None:
        return valid.high if valid.high_open else valid.high + 1
    return float("nan")


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
def test_every_declared_range_is_enforced_and_the_defaults_lie_inside(algorithm):
    config_class = ALGORITHMS[algorithm].config_class
    config_class()  # the defaults are valid
    ranges = _declared(config_class)
    assert {"q_limit", "batch_size"} <= set(ranges) or algorithm == "fb"
    for field, valid in ranges.items():
        with pytest.raises(ValueError, match=rf"{config_class.__name__}\.{field} must be"):
            config_class(**{field: _outside(valid)})
        if valid.integer:
            with pytest.raises(ValueError, match=rf"\.{field} must be an integer"):
                config_class(**{field: 3.5})


def test_every_numeric_field_of_every_config_has_a_declared_range():
    """No number can be set without a check (booleans and choices are checked by their own code)."""
    import dataclasses
    import typing

    for name, cls in ALGORITHMS.items():
        config_class = cls.config_class
        hints = typing.get_type_hints(config_class)
        numeric = {f.name for f in dataclasses.fields(config_class)
                   if any(t in (int, float) for t in typing.get_args(hints[f.name]) or (hints[f.name],))
                   or hints[f.name] == tuple[int, ...]}
        # checked by their own code, with rows in OUT_OF_RANGE: check_ent_coef; BRAC-p's (low, high) pair
        unchecked = numeric - set(_declared(config_class)) - {"ent_coef", "log_std_range"}
        assert not unchecked, f"{name}: no range for {sorted(unchecked)}"


@pytest.mark.parametrize("setting", ["rollout_freq=0", "rollout_batch_size=0", "rollout_length=0", "retain_rounds=0"])
def test_the_command_line_exits_2_at_once_on_a_bad_rollout_setting(setting, capsys, tmp_path, monkeypatch):
    from dynshift_agents import cli

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "nothing"))  # no dataset: it must fail before reading one
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "mopo", "--dataset", "dynshift/halfcheetah/mixed-v0", "--set", setting])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert setting.split("=")[0] in err and "integer ≥ 1" in err and "no local dataset" not in err


@pytest.mark.parametrize("argv, message", [
    (["train", "bc", "--dataset", "dynshift/hopper/medium-v0", "--set", "batch_size"],
     "--set takes KEY=VALUE, got 'batch_size'"),
    (["collect", "hopper", "medium", "--env-kwargs", "[1.5]"], "--env-kwargs must be a JSON object, got [1.5]"),
    (["train", "bc"], "dynshift train bc needs --dataset"),
    (["train", "dara", "--base", "iql", "--target-dataset", "dynshift/hopper/medium-mass1p5-v0"],
     "needs --base, --target-dataset and --source-dataset"),
])
def test_a_usage_error_exits_2_with_its_message(argv, message, capsys):
    from dynshift_agents import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_train_dara_with_a_missing_dataset_exits_2_naming_it_before_any_work(capsys, tmp_path, monkeypatch):
    from dynshift_agents import cli

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "dara", "--base", "iql", "--target-dataset", "dynshift/hopper/medium-mass1p5-v0",
                  "--source-dataset", "dynshift/hopper/medium-v0", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no local dataset 'dynshift/hopper/medium-mass1p5-v0'" in err and "dynshift collect hopper medium" in err
    assert not (tmp_path / "run" / "dara.pt").exists()

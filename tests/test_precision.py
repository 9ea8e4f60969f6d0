"""``precision="auto"``: bf16 only on CPUs with bf16 units where it measures faster; recorded in models
and checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from dynshift_agents import experiment, precision
from dynshift_agents.world_model import WorldModel, WorldModelConfig

pytestmark = pytest.mark.real_precision  # these tests mock the machine, not the choice


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A fake CPU: set ``flags`` and ``speedup``; ``measured`` counts the measurements taken."""
    state = {"flags": set(), "speedup": 2.0, "measured": 0}

    def measure(seconds: float = 0.25) -> float:
        state["measured"] += 1
        return state["speedup"]

    monkeypatch.setenv("DYNSHIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(precision, "cpu_flags", lambda: state["flags"])
    monkeypatch.setattr(precision, "measure_bf16_speedup", measure)
    precision.auto_precision.cache_clear()
    yield state
    precision.auto_precision.cache_clear()


def test_auto_is_fp32_without_bf16_units_and_measures_nothing(machine):
    machine["flags"] = {"avx2", "fma"}
    assert precision.resolve("auto") == "fp32"
    assert machine["measured"] == 0
    assert WorldModel(3, 2, WorldModelConfig(hidden=(8,), weight_decay=(0, 0))).config.precision == "fp32"


@pytest.mark.parametrize("flag", precision.BF16_FLAGS)
def test_auto_is_bf16_with_units_that_measure_faster_and_caches_the_measurement(machine, tmp_path, flag):
    machine["flags"] = {"avx2", flag}
    assert precision.resolve("auto") == "bf16"
    assert machine["measured"] == 1
    cached = json.loads((tmp_path / "home" / "precision.json").read_text())
    (entry,) = cached.values()
    assert entry["precision"] == "bf16" and entry["bf16_speedup"] == 2.0
    precision.auto_precision.cache_clear()  # a new process on the same machine reads the file
    assert precision.resolve("auto") == "bf16" and machine["measured"] == 1


def test_auto_is_fp32_where_bf16_units_measure_slower(machine):
    machine["flags"], machine["speedup"] = {"avx512_bf16"}, 0.1  # emulated bf16: ten times slower
    assert precision.resolve("auto") == "fp32"
    assert machine["measured"] == 1


def test_explicit_settings_are_kept_and_bad_ones_name_the_choices(machine):
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
    assert machine["measured"] == 0
    with pytest.raises(ValueError, match=r"unknown precision 'fp16'.*'auto', 'fp32', 'bf16'"):
        WorldModelConfig(precision="fp16")


def test_the_resolved_precision_is_saved_with_the_model_and_names_its_cache_file(machine, tmp_path):
    machine["flags"] = {"amx_bf16"}
    config = WorldModelConfig(hidden=(8,), weight_decay=(0, 0))
    model = WorldModel(3, 2, config)
    assert config.precision == "auto" and model.config.precision == "bf16"
    model.save(tmp_path / "model.pt")
    machine["flags"] = set()  # loaded on a machine without bf16 units: still the recorded precision
    precision.auto_precision.cache_clear()
    assert WorldModel.load(tmp_path / "model.pt").config.precision == "bf16"
    auto, fp32, bf16 = (experiment.world_model_path("d/x-v0", WorldModelConfig(precision=p), 0)
                        for p in ("auto", "fp32", "bf16"))
    assert auto == fp32 != bf16  # auto is fp32 on this machine now


def test_models_saved_before_the_setting_load_with_their_precision(tmp_path):
    model = WorldModel(3, 2, WorldModelConfig(hidden=(8,), weight_decay=(0, 0), precision="fp32"))
    model.save(tmp_path / "model.pt")
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    for old, expected in ((True, "bf16"), (False, "fp32")):
        config = json.loads(payload["config"])
        del config["precision"]
        config["fit_bf16"] = old
        torch.save(payload | {"config": json.dumps(config)}, tmp_path / "old.pt")
        assert WorldModel.load(tmp_path / "old.pt").config.precision == expected


def test_the_measurement_runs_and_reports_a_positive_ratio():
    assert precision.measure_bf16_speedup(seconds=0.02) > 0

"""Contextual task inference for a pre-trained FB model on a test robot (Jeen & Cullen 2024).

A forward-backward model pre-trained on D_train (one robot) returns a policy for any reward through
z. On a robot whose dynamics changed, the same reward is a different task in the old robot's
terms: the test robot cannot make some of the train robot's transitions. Three ways to pick z,
given a small D_test collected on the test robot:

- ``"train"`` (a, plain FB, zero-shot): z = √d · normalise(E_{D_train}[R · B(s')]);
- ``"test"`` (b): z = √d · normalise(E_{D_test}[R · B(s')]), the test robot's own rewards;
- ``"contextual"`` (c, the paper's method): z = √d · normalise(E_{D_train}[(R + ΔR) · B(s')]) with the
  DARA classifiers fitted with D_train as the *source* and D_test as the *target*:
  ΔR = log p(test|s,a,s') − log p(test|s,a) − log p(train|s,a,s') + log p(train|s,a) = −Δr_DARA.

The sign, stated: the paper's slides write the expectation over D_train but say z is inferred from
D_test. The two differ in the sign of ΔR. Over D_train, ΔR is negative exactly where the
train robot makes transitions the test robot would not. Adding it down-weights those transitions,
which is DARA's own relabelling (r ← r − η·Δr with η = 1, source = train). That reading is the
consistent one, and the one built. Over D_test there would be nothing to correct: those transitions
are the test robot's own.
"""

from __future__ import annotations

from typing import Any

import torch

from dynshift_agents.adaptation.dara import DARA, DARAConfig
from dynshift_agents.data.transitions import Transitions

MODES = ("train", "test", "contextual")
"""How z is inferred: (a) D_train's rewards, (b) D_test's rewards, (c) D_train's rewards + ΔR."""


def infer_task(agent, mode: str, train: Transitions, test: Transitions | None = None,
               dara: DARA | None = None, dara_config: DARAConfig | None = None, samples: int | None = None,
               seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Set ``agent``'s z by ``mode`` and return it with a report (the classifiers' accuracies and
    the ΔR distribution for ``"contextual"``). ``dara`` reuses fitted classifiers (source = train,
    target = test); otherwise they are fitted here with ``dara_config`` (η is fixed at 1, the
    paper's z)."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode != "train" and test is None:
        raise ValueError(f"mode {mode!r} needs the test robot's data (test=...)")
    if mode == "train":
        return agent.infer_z(train.next_obs, train.rewards, samples=samples, seed=seed), {"mode": mode}
    if mode == "test":
        return agent.infer_z(test.next_obs, test.rewards, samples=samples, seed=seed), {"mode": mode}
    if dara is None:
        dara = DARA(train.obs.shape[1], train.actions.shape[1], dara_config or DARAConfig())
        dara.fit(train, test, seed=seed)
    delta_r = dara.delta_r(train)  # Δr_DARA with the train robot as the source
    augmented = train.rewards - delta_r  # R + ΔR, ΔR = −Δr_DARA
    z = agent.infer_z(train.next_obs, augmented, samples=samples, seed=seed)
    return z, {"mode": mode, "classifiers": dara.report,
               "delta_R": {"mean": float(-delta_r.mean()), "std": float(delta_r.std()),
                           "min": float(-delta_r.max()), "max": float(-delta_r.min())}}


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))



def test_dataset_id(robot: str, kind: str, setting: dict[str, Any], size: int) -> str:
    """The test dataset of a grid setting's robot: ``size`` transitions of ``kind`` collected on it,
    e.g. ``dynshift/halfcheetah/medium-mass1p5-n20000-v0`` (the size in the id, so test sets never take
    the place of a study's full dataset, and several sizes can sit side by side)."""
    from dynshift_agents.data import dataset_id_for

    return dataset_id_for(robot, kind, setting).removesuffix("-v0") + f"-n{size}-v0"


def per_setting_tasks(checkpoint, settings: list[dict[str, Any]], mode: str, test_kind: str, out,
                      dara_config: DARAConfig | None = None, samples: int | None = None, seed: int = 0,
                      test_size: int = 20_000):
    """An FB checkpoint with its task inferred per grid setting, from each setting's test dataset
    (``test_size`` transitions of ``test_kind`` on that setting's robot; :func:`test_dataset_id`): one checkpoint per
    setting under ``out/setting<k>`` (made once; a re-run reuses them), as a
    :class:`~dynshift_agents.evaluation.PerSetting` for :func:`~dynshift_agents.evaluation.run_grid`.
    A missing test dataset is an error listing the commands that make them all."""
    import json
    from pathlib import Path

    from dynshift_agents.algorithms import load
    from dynshift_agents.data import load_transitions
    from dynshift_agents.data.catalog import datasets_root
    from dynshift_envs import get_robot

    from dynshift_agents.evaluation import PerSetting

    agent = load(checkpoint)
    if agent.name != "fb":
        raise ValueError(f"{checkpoint} holds a {agent.name} agent; per-setting tasks are for fb agents")
    robot = get_robot(agent.env_id).name
    ids = [test_dataset_id(robot, test_kind, setting, test_size) for setting in settings]
    missing = [(i, s) for i, s in zip(ids, settings) if not (datasets_root() / i / "data").is_dir()]
    if missing:
        commands = "\n".join(f"  dynshift collect {robot} {test_kind} --size {test_size} --dataset-id {i} "
                             f"--env-kwargs '{json.dumps(s)}'" for i, s in missing)
        raise FileNotFoundError(f"{len(missing)} of the grid's test datasets are missing ({missing[0][0]}, ...); "
                                f"make them with:\n{commands}")
    train = load_transitions(agent.dataset_id)
    out = Path(out)
    provenance = dict(agent.provenance)
    sources = {}
    for k, (dataset_id, setting) in enumerate(zip(ids, settings)):  # one agent, its z set per setting
        path = out / f"setting{k}"
        if not (path / "agent.json").exists():
            _, report = infer_task(agent, mode, train, load_transitions(dataset_id), dara_config=dara_config,
                                   samples=samples, seed=seed)
            agent.provenance = provenance | {"task": report | {"test_dataset": dataset_id, "setting": setting}}
            agent.save(path)
        sources[k] = str(path)
    return PerSetting(sources)

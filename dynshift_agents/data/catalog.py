"""Dataset ids and the local dataset store: naming, lookup with clear errors, listing.

DynShift datasets are Minari datasets named ``dynshift/<robot>/<kind>[-<shift>]-v0``: the shift is
encoded when there is one (``medium-mass1p5-damping0p5``, ``expert-crippled3``, ``random-big``; ``p``
stands for the decimal point, which Minari ids do not allow), as is an Ant without contact forces in
its observations (``mixed-nocontact``), and any other env keyword (per-body maps, ranges, schedules)
is a short hash of the keywords (``medium-shift3fa2c1d0``). They live in
Minari's local store (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``); nothing is ever
downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import minari

from dynshift_envs import ROBOTS

KINDS = ("random", "medium", "mixed", "medium-expert", "expert", "diverse")
"""Dataset kinds, D4RL's recipe (``mixed`` is D4RL's *medium-replay*), and DynShift's ``diverse`` (a
third random, a third the mixed replay, a third expert: data that covers more of the state space, for
reward-free pre-training such as FB's)."""

NAMESPACE = "dynshift"


def datasets_root() -> Path:
    """Minari's local dataset store, as an absolute path (a relative ``MINARI_DATASETS_PATH`` is taken
    from the working directory; Minari itself would join it to its own paths twice)."""
    return Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets")).expanduser().absolute()


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def _number(value: float) -> str:
    return f"{value:g}".replace(".", "p").replace("-", "m")


TAG_WORDS = {"mass": "mass", "damping": "damping", "friction": "friction", "gravity": "gravity",
             "joint_range": "range"}
"""The word a multiplier's tag starts with: ``mass1p5``, ``range0p5``, ``friction_foot_geom0p5``
(a morphology map's: ``morph_thigh1p5``)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def shift_tag(env_kwargs: dict[str, Any]) -> str:
    """The shift part of a dataset name, ``""`` for nominal dynamics."""
    parts, rest = [], {}
    order = {"mass": 0, "damping": 1, "friction": 2, "gravity": 3, "joint_range": 4, "crippled_legs": 5,
             "morphology": 6, "include_cfrc_ext_in_observation": 7}
    for key, value in sorted(env_kwargs.items(), key=lambda item: (order.get(item[0], 8), item[0])):
        word = TAG_WORDS.get(key, "morph" if key == "morphology" else key)
        if key in TAG_WORDS and _is_number(value):
            if value != 1:
                parts.append(f"{word}{_number(value)}")
        elif key in ("friction", "joint_range", "morphology") and isinstance(value, dict) and value \
                and all(_is_number(v) and re.fullmatch(r"[A-Za-z0-9_]+", k) for k, v in value.items()):
            parts.extend(f"{word}_{name}{_number(v)}" for name, v in sorted(value.items()) if v != 1)
        elif key == "crippled_legs" and isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
            if value:
                parts.append("crippled" + "".join(str(v) for v in sorted(value)))
        elif key == "morphology" and value in ("big", "small"):
            parts.append(value)
        elif key == "include_cfrc_ext_in_observation" and value is False:
            parts.append("nocontact")  # an observation keyword, named because MBPO-style Ant data uses it
        elif not (key == "morphology" and value == "default"):
            rest[key] = value
    if rest:
        digest = hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()[:8]
        parts.append(f"shift{digest}")
    return "-".join(parts)


def check_dataset_id(dataset_id: str) -> str:
    """``dataset_id`` if Minari accepts it (``[namespace/]name-vN``), else ``ValueError`` with the form."""
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        _, name, version = parse_dataset_id(dataset_id)
    except Exception:
        name, version = None, None
    if not name or version is None:
        raise ValueError(f"dataset id {dataset_id!r} is not of Minari's form [namespace/]name-vN "
                         f"(letters, digits, '-', '_'; e.g. dynshift/hopper/medium-v0)")
    return dataset_id


def dataset_id_for(robot: str, kind: str, env_kwargs: dict[str, Any] | None = None, version: int = 0) -> str:
    """The default dataset id: ``dynshift/halfcheetah/medium-v0``, ``dynshift/ant/expert-crippled3-v0``."""
    check_kind(kind)
    if robot not in ROBOTS:
        raise ValueError(f"unknown robot {robot!r}; choose one of {sorted(ROBOTS)}")
    tag = shift_tag(env_kwargs or {})
    return f"{NAMESPACE}/{robot}/{kind}{'-' + tag if tag else ''}-v{version}"


class DatasetNotFoundError(FileNotFoundError):
    """A dataset id that is not in the local store."""


def robot_and_kind(dataset_id: str) -> tuple[str | None, str | None]:
    """``dynshift/hopper/medium-mass1p5-v0`` → ``("hopper", "medium")``; Minari's ``mujoco/<env>/<kind>-vN``
    ids too (``medium-replay`` is ``mixed``). ``None`` for what the id does not say."""
    parts = dataset_id.split("/")
    if len(parts) < 3:
        return None, None
    name = parts[-1].rsplit("-v", 1)[0]
    kind = next((k for k in sorted(KINDS, key=len, reverse=True) if name == k or name.startswith(k + "-")), None)
    kind = {"medium-replay": "mixed"}.get(name, kind)
    return parts[-2], kind


def collect_hint(dataset_id: str) -> str:
    """The command that makes ``dataset_id`` (for DynShift ids), or the local store's location."""
    robot, kind = robot_and_kind(dataset_id)
    if dataset_id.startswith(NAMESPACE + "/") and robot in ROBOTS and kind is not None:
        return f"make it with `dynshift collect {robot} {kind} --dataset-id {dataset_id}` (plus its shift options)"
    return f"datasets are looked up in {datasets_root()} (MINARI_DATASETS_PATH); nothing is downloaded"


def load_dataset(dataset_id: str) -> minari.MinariDataset:
    """A local Minari dataset; a missing or unreadable one is an error that says what to do."""
    path = datasets_root() / dataset_id
    if not (path / "data").is_dir():
        local = sorted(minari.list_local_datasets())
        raise DatasetNotFoundError(
            f"no local dataset {dataset_id!r} in {datasets_root()}; {collect_hint(dataset_id)}. "
            f"Local datasets: {', '.join(local) if local else 'none'}"
        )
    try:
        return minari.load_dataset(dataset_id)
    except Exception as error:  # h5py/json errors of a damaged file
        raise OSError(
            f"dataset {dataset_id!r} at {path} is unreadable ({type(error).__name__}: {error}); delete it "
            f"(`minari delete {dataset_id}`) and {collect_hint(dataset_id)}"
        ) from error


def _size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_datasets(prefix: str | None = None) -> list[dict[str, Any]]:
    """Every local dataset (or those whose id starts with ``prefix``): id, transitions, episodes,
    episode return mean/std, the env and its dynamics keywords, kind, and bytes on disk."""
    import numpy as np

    rows = []
    for dataset_id, metadata in sorted(minari.list_local_datasets().items()):
        if prefix and not dataset_id.startswith(prefix):
            continue
        record = json.loads(metadata.get("dynshift", "{}"))
        if "episode_returns" in record:
            returns = record["episode_returns"]
        else:
            values = np.array([float(np.sum(e.rewards)) for e in minari.load_dataset(dataset_id).iterate_episodes()])
            returns = {"mean": float(values.mean()), "std": float(values.std())} if len(values) else {}
        spec = json.loads(metadata["env_spec"]) if isinstance(metadata.get("env_spec"), str) else {}
        rows.append({
            "dataset_id": dataset_id,
            "transitions": int(metadata.get("total_steps", 0)),
            "episodes": int(metadata.get("total_episodes", 0)),
            "return_mean": returns.get("mean"),
            "return_std": returns.get("std"),
            "env_id": spec.get("id"),
            "dynamics": record.get("request", {}).get("env_kwargs", {}),
            "kind": record.get("kind"),
            "bytes": _size_on_disk(datasets_root() / dataset_id),
        })
    return rows

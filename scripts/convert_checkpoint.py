"""Convert agent checkpoints written before safe checkpoints (``learner.zip``) to today's format.

    python scripts/convert_checkpoint.py runs/mopo/dynshift__halfcheetah__mixed-v0/seed0/checkpoint [...]

The old format stored the learner as Stable-Baselines3's zip, whose loading unpickles code: run this
**only on checkpoints whose origin you trust**. Each checkpoint is rewritten in place (atomically) as
``agent.json`` + ``tensors.pt`` + ``world_model.pt``, which load without unpickling; the policy's
predictions are checked to be unchanged before the old files are replaced.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dynshift_agents.algorithms import LEARNERS, algorithm_class
from dynshift_agents.world_model import WorldModel

RENAMED = {"offline": "mbpo"}


def convert(path: Path) -> None:
    meta = json.loads((path / "agent.json").read_text())
    if not (path / "learner.zip").exists():
        print(f"{path}: already in the safe format")
        return
    name = RENAMED.get(meta["algorithm"], meta["algorithm"])
    cls = algorithm_class(name)
    config = cls.config_class.from_checkpoint(meta["config"])
    agent = cls(meta["env_id"], WorldModel.load(path / "world_model.pt"), None, config, meta["seed"], meta["env_kwargs"],
                meta["dataset_id"])
    old = LEARNERS[config.learner].load(path / "learner.zip", device="cpu")  # unpickles: trusted files only
    agent.learner.set_parameters(old.get_parameters(), exact_match=True)
    for variable in old._get_torch_save_params()[1]:
        getattr(agent.learner, variable).data.copy_(getattr(old, variable).data)
    agent.learner._n_updates = old._n_updates
    agent.gradient_steps = meta["gradient_steps"]
    state = meta.get("learner_state", {})
    if "state_mean" in state:  # RAMBO's standardised states
        agent.encoder.mean = np.asarray(state["state_mean"], np.float32)
        agent.encoder.std = np.asarray(state["state_std"], np.float32)
    agent.bc_done = state.get("bc_done", False)
    obs = np.zeros((4, agent.encoder.obs_dim), np.float32)
    before = old.predict(agent.encoder(obs), deterministic=True)[0]
    np.testing.assert_allclose(agent.predict(obs)[0], before, rtol=0, atol=0)
    agent.save(path)
    (path / "learner.zip").unlink(missing_ok=True)
    print(f"{path}: converted ({name}, {agent.gradient_steps} gradient steps)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    for path in parser.parse_args().checkpoints:
        convert(path)


if __name__ == "__main__":
    main()

"""HalfCheetah with controlled dynamics shifts and big/small morphologies."""

from __future__ import annotations

from pathlib import Path

from gymnasium.envs.mujoco import half_cheetah_v5

from dynshift_envs.base import ARGUMENTS_DOC, DynShiftEnv
from dynshift_envs.morphology import asset_path


class HalfCheetahEnv(DynShiftEnv, half_cheetah_v5.HalfCheetahEnv):
    __doc__ = (
        """
    ## Description
    Gymnasium's HalfCheetah-v5 (a planar cheetah with 6 actuated joints, rewarded for running forward)
    whose physics can be shifted: heavier or lighter bodies, more or less joint damping, bigger or
    smaller legs, and switches of these in mid-episode. Observations, actions, rewards and the
    `info` reward terms are exactly v5's; see `gymnasium.envs.mujoco.half_cheetah_v5.HalfCheetahEnv`.

    Nominal model: total mass 14 kg; hinge damping 6, 4.5, 3, 4.5, 3, 1.5 (bthigh … ffoot); gear
    120 90 60 120 60 30; dt 0.05 s.

    Names for per-name maps:
    - bodies (`mass`): `torso`, `bthigh`, `bshin`, `bfoot`, `fthigh`, `fshin`, `ffoot`;
    - joints (`damping`): `rootx`, `rootz`, `rooty` (undamped), `bthigh`, `bshin`, `bfoot`, `fthigh`,
      `fshin`, `ffoot`;
    - limited joints (`joint_range`): the six leg joints;
    - geoms (`friction`): `floor`, `torso`, `head`, `bthigh`, `bshin`, `bfoot`, `fthigh`, `fshin`,
      `ffoot` (all 0.4).

    Morphologies: `"big"` and `"small"` scale the six leg segments (capsule length and radius, joint
    anchors, child body positions) by 1.25 and 0.75, keep torso and head, keep the total mass at
    14 kg, and raise or lower the torso's start height to keep the nominal foot clearance (details in
    `dynshift_envs.morphology`).
"""
        + ARGUMENTS_DOC
        + """
    ## Version History
    - v0: initial release, on Gymnasium's HalfCheetah-v5 (MuJoCo 4.0).
"""
    )

    robot = "HalfCheetah"

    @classmethod
    def morphology_file(cls, morphology: str) -> Path:
        return asset_path(morphology)

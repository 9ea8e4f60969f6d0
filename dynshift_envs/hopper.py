"""Hopper with controlled dynamics shifts."""

from __future__ import annotations

from gymnasium.envs.mujoco import hopper_v5

from dynshift_envs.base import ARGUMENTS_DOC, DynShiftEnv


class HopperEnv(DynShiftEnv, hopper_v5.HopperEnv):
    __doc__ = (
        """
    ## Description
    Gymnasium's Hopper-v5 (a one-legged planar hopper with 3 actuated joints, rewarded for hopping
    forward while healthy) whose mass and joint damping can be shifted, also in mid-episode.
    Observations, actions, rewards, terminations and `info` terms are exactly v5's; see
    `gymnasium.envs.mujoco.hopper_v5.HopperEnv`.

    Nominal model: total mass 15.82 kg; hinge damping 1, 1, 1; gear 200 ×3; dt 0.008 s.

    Names for per-name maps:
    - bodies (`mass`): `torso`, `thigh`, `leg`, `foot`;
    - joints (`damping`): `rootx`, `rootz`, `rooty` (undamped), `thigh_joint`, `leg_joint`, `foot_joint`.
"""
        + ARGUMENTS_DOC
        + """
    ## Version History
    - v0: initial release, on Gymnasium's Hopper-v5 (MuJoCo 4.0).
"""
    )

    robot = "Hopper"

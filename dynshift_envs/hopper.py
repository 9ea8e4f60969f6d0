"""Hopper with controlled dynamics shifts."""

from __future__ import annotations

from gymnasium.envs.mujoco import hopper_v5

from dynshift_envs.base import ARGUMENTS_DOC, DynShiftEnv


class HopperEnv(DynShiftEnv, hopper_v5.HopperEnv):
    __doc__ = (
        """
    ## Description
    Gymnasium's Hopper-v5 (a one-legged planar hopper with 3 actuated joints, rewarded for hopping
    forward while healthy) whose physics can be shifted (mass, damping, friction, gravity, joint ranges,
    limb sizes), also in mid-episode.
    Observations, actions, rewards, terminations and `info` terms are exactly v5's; see
    `gymnasium.envs.mujoco.hopper_v5.HopperEnv`.

    Nominal model: total mass 15.82 kg; hinge damping 1, 1, 1; gear 200 ×3; dt 0.008 s.

    Names for per-name maps:
    - bodies (`mass`): `torso`, `thigh`, `leg`, `foot`;
    - joints (`damping`): `rootx`, `rootz`, `rooty` (undamped), `thigh_joint`, `leg_joint`, `foot_joint`;
    - limited joints (`joint_range`): `thigh_joint`, `leg_joint`, `foot_joint`;
    - geoms (`friction`): `floor` (1.0), `torso_geom`, `thigh_geom`, `leg_geom` (0.9), `foot_geom` (2.0).
      Under MuJoCo's max rule the foot dominates the floor; a friction map is exact whichever dominates.

    Morphologies: `"big"` / `"small"` scale the thigh, leg and foot by 1.25 / 0.75 (built with
    `MjSpec`; total mass and start clearance kept, `rootz` still reads the torso's height).
"""
        + ARGUMENTS_DOC
        + """
    ## Version History
    - v0: initial release, on Gymnasium's Hopper-v5 (MuJoCo 4.0).
"""
    )

    robot = "Hopper"
    limb_roots = ("thigh",)

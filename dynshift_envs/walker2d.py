"""Walker2d with controlled dynamics shifts."""

from __future__ import annotations

from gymnasium.envs.mujoco import walker2d_v5

from dynshift_envs.base import ARGUMENTS_DOC, DynShiftEnv


class Walker2dEnv(DynShiftEnv, walker2d_v5.Walker2dEnv):
    __doc__ = (
        """
    ## Description
    Gymnasium's Walker2d-v5 (a planar biped with 6 actuated joints, rewarded for walking forward while
    healthy) whose physics can be shifted (mass, damping, friction, gravity, joint ranges, leg sizes),
    also in mid-episode. Observations, actions,
    rewards, terminations and `info` terms are exactly v5's; see
    `gymnasium.envs.mujoco.walker2d_v5.Walker2dEnv`.

    Nominal model: total mass 23.68 kg; hinge damping 0.1 ×6; gear 100 ×6; dt 0.008 s.

    Names for per-name maps:
    - bodies (`mass`): `torso`, `thigh`, `leg`, `foot`, `thigh_left`, `leg_left`, `foot_left`;
    - joints (`damping`): `rootx`, `rootz`, `rooty` (undamped), `thigh_joint`, `leg_joint`, `foot_joint`,
      `thigh_left_joint`, `leg_left_joint`, `foot_left_joint`;
    - limited joints (`joint_range`): the six leg joints above;
    - geoms (`friction`): `floor` (0.7), `torso_geom`, `thigh_geom`, `leg_geom`, `thigh_left_geom`,
      `leg_left_geom` (0.9), `foot_geom`, `foot_left_geom` (1.9).

    Morphologies: `"big"` / `"small"` scale both legs (thigh, leg, foot) by 1.25 / 0.75 (built with
    `MjSpec`; total mass and start clearance kept).
"""
        + ARGUMENTS_DOC
        + """
    ## Version History
    - v0: initial release, on Gymnasium's Walker2d-v5 (MuJoCo 4.0).
"""
    )

    robot = "Walker2d"
    limb_roots = ("thigh", "thigh_left")

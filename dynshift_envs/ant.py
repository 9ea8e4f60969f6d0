"""Ant with controlled dynamics shifts and crippled legs."""

from __future__ import annotations

from gymnasium.envs.mujoco import ant_v5

from dynshift_envs.base import ARGUMENTS_DOC, DynShiftEnv
from dynshift_envs.model import Leg

LEGS = (
    Leg("front_left_leg", ("hip_1", "ankle_1")),
    Leg("front_right_leg", ("hip_2", "ankle_2")),
    Leg("back_leg", ("hip_3", "ankle_3")),
    Leg("right_back_leg", ("hip_4", "ankle_4")),
)
"""Ant legs in the crippled-Ant literature's numbering: leg k is driven by ``hip_{k+1}``/``ankle_{k+1}``."""


class AntEnv(DynShiftEnv, ant_v5.AntEnv):
    __doc__ = (
        """
    ## Description
    Gymnasium's Ant-v5 (a quadruped with 8 actuated joints, rewarded for moving forward while healthy)
    whose physics can be shifted (mass, damping, friction, gravity, joint ranges, leg sizes) and whose
    legs can be crippled, also in mid-episode.
    Observations (105 values with contact forces, v5's default), actions, rewards, terminations and
    `info` terms are exactly v5's; see `gymnasium.envs.mujoco.ant_v5.AntEnv`.

    Nominal model: total mass 0.911 kg; hinge damping 1 ×8; gear 150 ×8; dt 0.05 s.

    Legs (`crippled_legs`), numbered as in the crippled-Ant literature; a leg is crippled by zeroing
    the gear of both its actuators, found by joint name (the XML's actuator order is hip_4, ankle_4,
    hip_1, …, not leg order). The control cost is computed from the commanded action, as in v5.

    | Number | Name | Joints |
    |---|---|---|
    | 0 | `front_left_leg` | `hip_1`, `ankle_1` |
    | 1 | `front_right_leg` | `hip_2`, `ankle_2` |
    | 2 | `back_leg` | `hip_3`, `ankle_3` |
    | 3 | `right_back_leg` | `hip_4`, `ankle_4` |

    Names for per-name maps:
    - bodies (`mass`): `torso`, `front_left_leg`, `aux_1`, `front_right_leg`, `aux_2`, `back_leg`,
      `aux_3`, `right_back_leg`, `aux_4` (the ankle bodies are unnamed in the XML: only a number for
      `mass` reaches them);
    - joints (`damping`): `root` (free joint, undamped), `hip_1` … `hip_4`, `ankle_1` … `ankle_4`;
    - limited joints (`joint_range`): `hip_1` … `hip_4`, `ankle_1` … `ankle_4`;
    - geoms (`friction`; all 1.0): `floor`, `torso_geom`, `aux_1_geom` … `aux_4_geom`,
      `left_leg_geom`, `right_leg_geom`, `back_leg_geom`, `rightback_leg_geom`, `left_ankle_geom`,
      `right_ankle_geom`, `third_ankle_geom`, `fourth_ankle_geom`.

    Morphologies: `"big"` / `"small"` scale all four legs by 1.25 / 0.75 (built with `MjSpec`; total
    mass and start clearance kept).

    With `context_in_obs` the context ends with one flag per leg (`leg_active:<name>`, 1 = working).
"""
        + ARGUMENTS_DOC
        + """
    ## Version History
    - v0: initial release, on Gymnasium's Ant-v5 (MuJoCo 4.0).
"""
    )

    robot = "Ant"
    limb_roots = tuple(leg.body for leg in LEGS)
    legs = LEGS

"""Videos of policies acting on (shifted, switching) robots: mp4 with step, return, true and inferred context.

One or two policies run the same seeded episode on the same env (two: side by side). Frames come
from MuJoCo's own ``mujoco.Renderer`` with a camera tracking the torso, shadows and reflections off
(about 5× faster than the default on a software renderer); text is drawn with Pillow; imageio's
ffmpeg writes the mp4. The *true* context is ``info["dynamics"]`` (mass and damping multipliers, or
crippled legs); the *inferred* one, for context-conditioned agents, is the online estimate ẑ
(its mean over state dimensions is shown).

The AugWM paper's switch test is ``PROTOCOLS["augwm-switch"]``: 1 500 steps, switching at step 500
from nominal dynamics to mass 0.75, damping 0.5.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from dynshift_agents.evaluation import Policy, acting, observation_kwargs
from dynshift_envs import get_robot

PROTOCOLS = {
    "augwm-switch": {"steps": 1500, "env_kwargs": {"schedule": [{"step": 500, "mass": 0.75, "damping": 0.5}]}},
}
"""Named video settings; ``augwm-switch`` is the AugWM project page's mid-episode test."""



def _describe(dynamics: dict[str, Any]) -> str:
    parts = []
    for key in ("mass", "damping"):
        value = dynamics.get(key)
        parts.append(f"{key} {value:g}" if isinstance(value, (int, float)) else f"{key} per-body")
    if dynamics.get("crippled_legs"):
        parts.append(f"crippled {dynamics['crippled_legs']}")
    for key in ("friction", "gravity", "joint_range"):
        value = dynamics.get(key, 1.0)
        if value != 1.0:
            parts.append(f"{key.replace('_', ' ')} {value:g}" if isinstance(value, (int, float)) else f"{key} per-name")
    shape = dynamics.get("morphology", "default")
    if shape != "default":
        parts.append(shape if isinstance(shape, str) else "morphology " + " ".join(f"{b} ×{k:g}" for b, k in shape.items()))
    return ", ".join(parts)


class _Runner:
    """One policy on one env, stepped a frame at a time."""

    def __init__(self, policy: Policy, name: str, env_id: str, env_kwargs: dict, seed: int, steps: int, width: int,
                 height: int):
        self.name = name
        self.env = gym.make(env_id, max_episode_steps=steps, **(observation_kwargs(policy) | env_kwargs))
        self.obs, info = self.env.reset(seed=seed)
        self.dynamics = info["dynamics"]
        self.total, self.t, self.done = 0.0, 0, False
        self.act, self.observe, self.estimator = acting(policy, [self.env])
        model = self.env.unwrapped.model
        self.renderer = mujoco.Renderer(model, height, width)
        self.camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, self.camera)
        self.camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.camera.trackbodyid = 1
        self.camera.distance = get_robot(env_id).camera_distance
        self.camera.elevation = -15.0
        self.floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
        if self.floor >= 0:
            material = model.geom_matid[self.floor]
            uniform = material < 0 or model.mat_texuniform[material]
            repeat = np.ones(2) if uniform else model.mat_texrepeat[material]
            self.tile = 2 * model.geom_size[self.floor, :2] / repeat
            """One checker tile of the drawn floor (2 × size / texrepeat)."""

    def step(self) -> None:
        if self.done:
            return
        rows = np.zeros(1, dtype=int)
        action = self.act(self.obs[None], rows)[0]
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        if self.observe is not None:
            self.observe(rows, self.obs[None], action[None], next_obs[None])
        self.obs, self.total, self.t = next_obs, self.total + reward, self.t + 1
        self.dynamics = info["dynamics"]
        self.done = terminated

    def _follow(self) -> None:
        """Keep the drawn floor under the robot: a render-time change of the scene only.

        Gymnasium's floor planes are drawn 40 m (Hopper 20 m) either side of the origin; MuJoCo
        collides with a plane as if it were infinite, so a running cheetah leaves the drawn floor
        after about 40 m and runs on in grey space. After the scene is built, the floor's scene geom
        moves with the torso by whole checker tiles (2 × size / texrepeat), so the pattern stays
        fixed in the world and shows the speed; the model and the simulation are never touched."""
        if self.floor < 0:
            return
        data = self.env.unwrapped.data
        shift = np.round(data.xpos[self.camera.trackbodyid, :2] / self.tile) * self.tile
        scene = self.renderer.scene
        for geom in scene.geoms[:scene.ngeom]:
            if geom.objtype == mujoco.mjtObj.mjOBJ_GEOM and geom.objid == self.floor:
                geom.pos[:2] = data.geom_xpos[self.floor, :2] + shift

    def frame(self) -> np.ndarray:
        self.renderer.update_scene(self.env.unwrapped.data, self.camera)
        self._follow()
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
            self.renderer.scene.flags[flag] = False
        image = Image.fromarray(self.renderer.render())
        draw = ImageDraw.Draw(image)
        lines = [self.name, f"step {self.t}   return {self.total:.0f}" + ("   (fell)" if self.done else ""),
                 f"true: {_describe(self.dynamics)}"]
        if self.estimator is not None:
            lines.append(f"inferred z: mean {self.estimator.z.mean():.2f}")
        draw.rectangle((0, 0, image.width, 14 * len(lines) + 6), fill=(0, 0, 0))
        for i, line in enumerate(lines):
            draw.text((6, 4 + 14 * i), line, fill=(255, 255, 255))
        return np.asarray(image)

    def close(self) -> None:
        self.renderer.close()
        self.env.close()


def write_video(policies: dict[str, Policy], env_id: str, path: str | os.PathLike, steps: int = 1000,
                env_kwargs: dict | None = None, seed: int = 0, width: int = 480, height: int = 480, fps: int = 30,
                every: int = 1, progress: bool = False) -> Path:
    """Run every policy for ``steps`` steps (the same seed and dynamics) and write an mp4 with their
    frames side by side, one frame per ``every`` steps (``progress``: a bar over the steps). Returns
    the path."""
    import imageio.v3 as iio

    if not 1 <= len(policies) <= 2:
        raise ValueError(f"a video shows one or two policies, got {len(policies)}")
    if width % 16 or height % 16:
        raise ValueError(f"frame sizes must be multiples of 16 (video codecs), got {width}×{height}")
    runners = [_Runner(p, name, env_id, env_kwargs or {}, seed, steps, width, height) for name, p in policies.items()]
    frames = []
    try:
        frames.append(np.concatenate([r.frame() for r in runners], axis=1))
        for t in tqdm(range(1, steps + 1), desc=f"video {Path(path).name}", unit="step", disable=not progress):
            for runner in runners:
                runner.step()
            if t % every == 0:
                frames.append(np.concatenate([r.frame() for r in runners], axis=1))
    finally:
        for runner in runners:
            runner.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=16)
    os.replace(tmp, path)
    return path

"""A short demonstration of the DynShift environments: ``python -m dynshift_envs``.

Every robot runs the same open-loop gait (a sine wave per joint, identical actions in every setting)
from the same seeded initial state under a few dynamics shifts, and the table shows how far it got
and what it earned: the same commands, different physics. ``--frames DIR`` also saves one PNG per
setting (needs EGL or OSMesa for headless rendering).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import gymnasium as gym
import numpy as np

import dynshift_envs  # noqa: F401  (registers the ids)

SETTINGS = {
    "DynShift/HalfCheetah-v0": {
        "nominal": {},
        "mass x1.5": {"mass": 1.5},
        "damping x0.5": {"damping": 0.5},
        "big legs": {"morphology": "big"},
        "small legs": {"morphology": "small"},
        "switch at 150": {"schedule": [{"step": 150, "mass": 0.75, "damping": 0.5}]},
    },
    "DynShift/Hopper-v0": {"nominal": {}, "mass x1.5": {"mass": 1.5}, "damping x0.25": {"damping": 0.25}},
    "DynShift/Walker2d-v0": {"nominal": {}, "mass x0.5": {"mass": 0.5}, "damping x1.75": {"damping": 1.75}},
    "DynShift/Ant-v0": {
        "nominal": {},
        "mass x1.5": {"mass": 1.5},
        "leg 0 crippled": {"crippled_legs": [0]},
        "legs 0+3 crippled": {"crippled_legs": [0, 3]},
    },
}


def gait(action_dim: int, steps: int, period: float = 20.0) -> np.ndarray:
    """An open-loop sine gait, each joint a quarter period after the previous one."""
    t = np.arange(steps)[:, None]
    phase = np.arange(action_dim)[None, :] * np.pi / 2
    return (0.8 * np.sin(2 * np.pi * t / period + phase)).astype(np.float32)


def run(env_id: str, kwargs: dict, steps: int, frames: Path | None, label: str) -> tuple[float, float, int]:
    render = {"render_mode": "rgb_array", "width": 320, "height": 240} if frames else {}
    env = gym.make(env_id, max_episode_steps=steps, **kwargs, **render)
    env.reset(seed=0)
    total, n = 0.0, 0
    for action in gait(env.action_space.shape[0], steps):
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        n += 1
        if terminated or truncated:
            break
    x = float(env.unwrapped.data.qpos[0])
    if frames:
        import imageio.v3 as iio

        frames.mkdir(parents=True, exist_ok=True)
        name = f"{env_id.split('/')[1]}_{label.replace(' ', '_').replace('+', '_')}.png"
        iio.imwrite(frames / name, env.render())
    env.close()
    return total, x, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="steps per episode (default 300)")
    parser.add_argument("--frames", type=Path, default=None, help="save a PNG of each setting's last frame here")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.frames:
        os.environ.setdefault("MUJOCO_GL", "egl")
    print(f"Same open-loop sine gait, seed 0, up to {args.steps} steps, under each setting:\n")
    print(f"{'env':24s} {'setting':20s} {'return':>9s} {'x (m)':>8s} {'steps':>6s}")
    for env_id, settings in SETTINGS.items():
        for label, kwargs in settings.items():
            total, x, n = run(env_id, kwargs, args.steps, args.frames, label)
            print(f"{env_id:24s} {label:20s} {total:9.1f} {x:8.2f} {n:6d}")
    if args.frames:
        print(f"\nframes written to {args.frames}/")


if __name__ == "__main__":
    main()

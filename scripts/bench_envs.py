"""Step and reset cost of DynShift envs against their Gymnasium v5 twins, side by side in one run.

    python scripts/bench_envs.py [--rounds 7] [--steps 4000] [--robots HalfCheetah Ant ...]

Every variant of a robot runs the same pre-drawn actions in interleaved rounds (v5, identity,
shifted, v5, identity, shifted, ...), so machine noise hits all of them alike; the median rate over
rounds is reported with its ratio to v5. Raw envs (``.unwrapped``) are timed, without Gymnasium's
wrappers, so the DynShift layer is not diluted by wrapper overhead; healthy-termination is switched
off (a v5 argument) so episodes never end inside a block. Goal: shifted envs step at >= 0.97x v5.

Also measured: reset cost (fixed shifts apply once; ranges resample and recompute the model
constants at every reset) and an 8-env ``AsyncVectorEnv`` against ``SyncVectorEnv``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

from dynshift_envs import V5_TWINS

ROBOTS = {
    "HalfCheetah": {"shifted mass 1.5 damping 0.5": {"mass": 1.5, "damping": 0.5}, "big": {"morphology": "big"}},
    "Hopper": {"shifted mass 1.5 damping 0.5": {"mass": 1.5, "damping": 0.5}},
    "Walker2d": {"shifted mass 1.5 damping 0.5": {"mass": 1.5, "damping": 0.5}},
    "Ant": {"shifted mass 1.5 damping 0.5": {"mass": 1.5, "damping": 0.5}, "crippled leg 0": {"crippled_legs": [0]}},
}
COMMON = {
    "identity": {},
    "schedule (switch at step 500)": {"schedule": [{"step": 500, "mass": 0.75, "damping": 0.5}]},
    "context_in_obs": {"mass": 1.5, "context_in_obs": True},
}


def no_termination(robot: str) -> dict:
    return {} if robot == "HalfCheetah" else {"terminate_when_unhealthy": False}


def v5_with_physics_of(shifted, v5_id: str, robot: str):
    env = gym.make(v5_id, **no_termination(robot)).unwrapped
    for array in ("body_mass", "body_inertia", "dof_damping", "actuator_gear", "dof_invweight0", "body_invweight0",
                  "body_subtreemass", "actuator_acc0"):
        getattr(env.model, array)[:] = getattr(shifted.model, array)
    env.model.stat.meaninertia = shifted.model.stat.meaninertia
    env.model.stat.meanmass = shifted.model.stat.meanmass
    return env


def time_steps(env, actions) -> float:
    step = env.step
    start = time.perf_counter()
    for action in actions:
        step(action)
    return len(actions) / (time.perf_counter() - start)


def bench_steps(robot: str, rounds: int, steps: int) -> None:
    env_id = f"DynShift/{robot}-v0"
    variants = {"v5": gym.make(V5_TWINS[env_id], **no_termination(robot)).unwrapped}
    for name, kwargs in {**COMMON, **ROBOTS[robot]}.items():
        variants[name] = gym.make(env_id, **no_termination(robot), **kwargs).unwrapped
    # Fair baseline for the shifted variants: a v5 env whose arrays are edited by hand to the same
    # physics, so the ratio measures the DynShift layer alone and not a heavier robot's extra contacts.
    for name, kwargs in ROBOTS[robot].items():
        if "morphology" not in kwargs:
            variants[f"v5 edited by hand, {name}"] = v5_with_physics_of(variants[name], V5_TWINS[env_id], robot)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *variants["v5"].action_space.shape))
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, env in variants.items():
            env.reset(seed=0)
            rates[name].append(time_steps(env, actions))
    base = statistics.median(rates["v5"])
    print(f"\n{robot}: env.step, {rounds} rounds x {steps} steps (median)")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:52s} {rate:9.0f} steps/s   {rate / base:5.3f}x v5")
    for name in ROBOTS[robot]:
        twin = f"v5 edited by hand, {name}"
        if twin in rates:
            ratio = statistics.median(rates[name]) / statistics.median(rates[twin])
            print(f"  -> DynShift layer, {name}: {ratio:5.3f}x v5 with the same physics (goal >= 0.97)")


def bench_resets(rounds: int, n: int = 500) -> None:
    variants = {
        "v5": gym.make("HalfCheetah-v5").unwrapped,
        "identity": gym.make("DynShift/HalfCheetah-v0").unwrapped,
        "fixed shift (mass 1.5)": gym.make("DynShift/HalfCheetah-v0", mass=1.5).unwrapped,
        "range mass (0.5, 1.5)": gym.make("DynShift/HalfCheetah-v0", mass=(0.5, 1.5)).unwrapped,
        "schedule": gym.make("DynShift/HalfCheetah-v0", schedule=[{"step": 500, "mass": 0.75}]).unwrapped,
    }
    cost: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, env in variants.items():
            env.reset(seed=0)
            start = time.perf_counter()
            for _ in range(n):
                env.reset()
            cost[name].append((time.perf_counter() - start) / n * 1e6)
    base = statistics.median(cost["v5"])
    print(f"\nHalfCheetah: env.reset, {rounds} rounds x {n} resets (median)")
    for name, values in cost.items():
        us = statistics.median(values)
        print(f"  {name:52s} {us:9.1f} us/reset   {us / base:5.2f}x v5")


def bench_vector(rounds: int, steps: int, n_envs: int = 8) -> None:
    def fns(env_id, **kwargs):
        return [lambda: gym.make(env_id, **kwargs) for _ in range(n_envs)]

    vectors = {
        "Sync  v5": gym.vector.SyncVectorEnv(fns("HalfCheetah-v5")),
        "Sync  DynShift mass 1.5": gym.vector.SyncVectorEnv(fns("DynShift/HalfCheetah-v0", mass=1.5)),
        "Async v5": gym.vector.AsyncVectorEnv(fns("HalfCheetah-v5")),
        "Async DynShift mass 1.5": gym.vector.AsyncVectorEnv(fns("DynShift/HalfCheetah-v0", mass=1.5)),
    }
    actions = np.random.default_rng(0).uniform(-1, 1, (steps // n_envs, n_envs, 6))
    rates: dict[str, list[float]] = {name: [] for name in vectors}
    try:
        for _ in range(rounds):
            for name, env in vectors.items():
                env.reset(seed=0)
                rates[name].append(time_steps(env, actions) * n_envs)
    finally:
        for env in vectors.values():
            env.close()
    base = statistics.median(rates["Sync  v5"])
    print(f"\nHalfCheetah: {n_envs}-env vector envs, {rounds} rounds x {steps} env-steps (median)")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:52s} {rate:9.0f} env-steps/s   {rate / base:5.3f}x Sync v5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=4000, help="steps per variant per round")
    parser.add_argument("--robots", nargs="+", choices=list(ROBOTS), default=list(ROBOTS))
    args = parser.parse_args()
    for robot in args.robots:
        bench_steps(robot, args.rounds, args.steps)
    bench_resets(args.rounds)
    bench_vector(args.rounds, args.steps)


if __name__ == "__main__":
    main()

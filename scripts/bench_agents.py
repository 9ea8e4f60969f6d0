"""Agent-side speed, side by side in one run, with ratios.

    python scripts/bench_agents.py                 # 2 torch threads, the shapes of the papers
    python scripts/bench_agents.py --threads 1 --quick

1. World-model gradient steps/s (7 members, 4×200 SiLU, batch 256 per member, HalfCheetah shapes):
   DynShift's batched ensemble against a naive per-member loop over seven ``nn.Sequential`` of the
   same shapes (same loss, one Adam); goals ≥ 1.5× the loop and ≥ 86 steps/s (a public PyTorch
   reimplementation's ensemble measured 85.6 steps/s on a 2-core machine of this project's kind).
2. Model rollout transitions/s: 50 000 start states × 5 steps with the MOPO penalty and a 256×2 SAC
   actor, in chunks of 4 096 start states against one 50 000-row batch.
3. SAC gradient steps/s (256×2, batch 256): the model-based agents' fused SAC update and SB3's own
   ``SAC.train()``, both on a ``MixedReplayBuffer``, against plain SB3 ``SAC`` on an ordinary
   ``ReplayBuffer`` of the same size (goal ≥ 2.5×).
   ``--sections compile``: the fused update with its network passes under ``torch.compile`` (inductor)
   against the same update eager, same seed and batches.
4. Model-free learners (BC, TD3+BC, IQL, CQL, BCQ, BEAR, BRAC-p, AWR) and FB, gradient steps/s at 256×2
   critics and batch 256 (their other networks at their own defaults), beside plain SB3 SAC, on
   ``--device``. ``--sections learners --compare-with CHECKOUT``: the same against another checkout's
   code (the commit before a change), alternating, with ratios.
5. RAMBO adversarial model updates/s (one step of a 256-state rollout + 256 real rows, 7×4×200 ensemble,
   256×2 SAC critics): a public PyTorch reimplementation does about 34 on a 2-core machine of this kind.
6. Grid evaluation (HalfCheetah, a 256×2 SAC actor, 1 000-step episodes): ``run_grid`` — settings
   batched in lockstep, split over ``--workers`` processes — against the one-setting-at-a-time loop a
   script would write (one env, one ``predict`` per step), over the same settings and episodes;
   goal ≥ 3× on 2 cores.

Medians of ``--repeats`` timed windows after a warm-up. Figures vary with the machine's load: compare
the ratios, which are measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import SAC
from torch import nn

import dynshift_envs  # noqa: F401
from dynshift_agents.algorithms import MOPO, MOPOConfig
from dynshift_agents.data import Transitions
from dynshift_agents.precision import machine, resolve
from dynshift_agents.world_model import WorldModel, WorldModelConfig

OBS, ACT = 17, 6


def timed(fn, steps: int, repeats: int) -> float:
    """Median rate (calls/s) over ``repeats`` windows of ``steps`` calls, after one warm-up window."""
    fn_window = lambda: [fn() for _ in range(steps)]  # noqa: E731
    fn_window()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn_window()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def fake_transitions(n: int, rng: np.random.Generator) -> Transitions:
    obs = rng.normal(size=(n, OBS)).astype(np.float32)
    return Transitions(obs=obs, actions=rng.uniform(-1, 1, (n, ACT)).astype(np.float32),
                       rewards=rng.normal(size=n).astype(np.float32),
                       next_obs=(obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32),
                       terminals=np.zeros(n, bool), timeouts=np.zeros(n, bool))


def bench_world_model(steps: int, repeats: int, precision: str = "fp32") -> tuple[float, float]:
    config = WorldModelConfig(precision=precision)
    model = WorldModel(OBS, ACT, config)
    x = torch.randn(config.members, 256, OBS + ACT)
    y = torch.randn(config.members, 256, OBS + 1)
    optimizer = torch.optim.Adam(model.ensemble.parameters(), lr=1e-3, fused=True)  # as WorldModel.fit

    def batched():
        loss = model.loss(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    widths = (OBS + ACT, *config.hidden)
    members = [nn.Sequential(*[m for a, b in zip(widths[:-1], widths[1:]) for m in (nn.Linear(a, b), nn.SiLU())],
                             nn.Linear(widths[-1], 2 * (OBS + 1))) for _ in range(config.members)]
    max_logvar = nn.Parameter(torch.full((OBS + 1,), 0.5))
    min_logvar = nn.Parameter(torch.full((OBS + 1,), -10.0))
    loop_optimizer = torch.optim.Adam([p for m in members for p in m.parameters()] + [max_logvar, min_logvar], lr=1e-3)

    def loop():
        total = 0.0
        for m, net in enumerate(members):
            mean, raw = net(x[m]).split(OBS + 1, dim=-1)
            logvar = max_logvar - F.softplus(max_logvar - raw)
            logvar = min_logvar + F.softplus(logvar - min_logvar)
            total = total + ((mean - y[m]).pow(2) * torch.exp(-logvar) + logvar).mean()
            linears = [layer for layer in net if isinstance(layer, nn.Linear)]
            total = total + sum(c * 0.5 * layer.weight.pow(2).sum() for c, layer in zip(config.weight_decay, linears))
        total = total + 0.01 * (max_logvar.sum() - min_logvar.sum())
        loop_optimizer.zero_grad(set_to_none=True)
        total.backward()
        loop_optimizer.step()

    return timed(batched, steps, repeats), timed(loop, steps, repeats)


def bench_rollout(repeats: int, start_states: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    data = fake_transitions(start_states, rng)
    model = WorldModel(OBS, ACT)
    rates = {}
    for chunk in (4096, start_states):
        agent = MOPO("DynShift/HalfCheetah-v0", model, data,
                     MOPOConfig(rollout_batch_size=start_states, rollout_length=5, rollout_chunk=chunk), seed=0)
        count = {}

        def once():
            count["n"] = agent.rollout()["rollout/transitions"]

        rate = timed(once, 1, repeats)
        rates[chunk] = rate * count["n"]
    return rates


def mixed_sac(data: Transitions, learner: str):
    """A MOPO agent's SAC (``learner``: "sac", the fused update, or "sac-sb3") on ``data`` with the model
    part of its buffer filled, so batches really mix (5 % real); logging to nowhere."""
    from stable_baselines3.common.logger import configure

    agent = MOPO("DynShift/HalfCheetah-v0", WorldModel(OBS, ACT), data, MOPOConfig(learner=learner), seed=0)
    agent.replay_buffer.add_model(data.obs, data.next_obs, data.actions, data.rewards, data.terminals)
    agent.learner.set_logger(configure(None, []))
    return agent


def bench_sac(steps: int, repeats: int) -> tuple[float, float, float]:
    """Gradient steps/s of the model-based agents' fused SAC and of SB3's own ``SAC.train()``, both on
    a MixedReplayBuffer, and of plain SB3 SAC on its ordinary ReplayBuffer."""
    rng = np.random.default_rng(0)
    data = fake_transitions(100_000, rng)
    agents = [mixed_sac(data, learner) for learner in ("sac", "sac-sb3")]

    env = gym.make("DynShift/HalfCheetah-v0")
    plain = SAC("MlpPolicy", env, buffer_size=100_000, learning_starts=0, batch_size=256,
                policy_kwargs={"net_arch": [256, 256]}, seed=0, device="cpu")
    for i in range(100_000):
        plain.replay_buffer.add(data.obs[i:i + 1], data.next_obs[i:i + 1], data.actions[i:i + 1], data.rewards[i:i + 1],
                                data.terminals[i:i + 1], [{}])
    plain.set_logger(agents[0].learner.logger)
    fused, unfused = (timed(lambda a=a: a.learner.train(gradient_steps=50, batch_size=256), max(1, steps // 50),
                            repeats) * 50 for a in agents)
    baseline = timed(lambda: plain.train(gradient_steps=50, batch_size=256), max(1, steps // 50), repeats) * 50
    return fused, unfused, baseline


def bench_compiled_sac(steps: int, repeats: int) -> dict[str, float]:
    """The fused SAC update as it is, and with its network passes (the stacked critics, the stacked
    target critics, the actor's sampling and log-probability) wrapped in ``torch.compile`` (inductor,
    its random draws left to eager kernels so both runs draw the same numbers). Two agents from the
    same seed and start run the same number of updates on the same batches: gradient steps/s of each,
    the compilation's one-off seconds, and the largest parameter difference at the end."""
    import torch._inductor.config as inductor

    inductor.fallback_random = True
    data = fake_transitions(100_000, np.random.default_rng(0))
    eager, compiled = (mixed_sac(data, "sac").learner for _ in range(2))
    compiled._critics = torch.compile(compiled._critics.__call__)  # the learner calls these attributes
    compiled._targets = torch.compile(compiled._targets.__call__)
    compiled.actor.action_log_prob = torch.compile(compiled.actor.action_log_prob)
    start = time.perf_counter()
    torch.manual_seed(1)
    compiled.train(gradient_steps=2, batch_size=256)  # compiles (and its twin takes the same 2 steps)
    compile_seconds = time.perf_counter() - start
    torch.manual_seed(1)
    eager.train(gradient_steps=2, batch_size=256)
    rates = {}
    for name, learner in (("eager", eager), ("compiled", compiled)):
        torch.manual_seed(2)
        rates[name] = timed(lambda learner=learner: learner.train(gradient_steps=50, batch_size=256), max(1, steps // 50),
                            repeats) * 50
    difference = max((a - b).abs().max().item() for a, b in zip(eager.policy.parameters(), compiled.policy.parameters()))
    return rates | {"compile_seconds": compile_seconds, "difference": difference}


def bench_mopo_loop(blocks: int, start_states: int) -> dict[str, float]:
    """Seconds per 1 000 gradient steps of the whole MOPO loop (a rollout of ``start_states`` × 5 model
    steps, then 1 000 SAC steps on the mixture), with the fused SAC update and with SB3's own."""
    rng = np.random.default_rng(0)
    data = fake_transitions(100_000, rng)
    seconds = {}
    for learner in ("sac", "sac-sb3"):
        agent = MOPO("DynShift/HalfCheetah-v0", WorldModel(OBS, ACT), data,
                     MOPOConfig(learner=learner, rollout_batch_size=start_states), seed=0)
        agent.learn(1000, progress_bar=False, log_formats=())  # warm-up block
        start = time.perf_counter()
        agent.learn(1000 * (1 + blocks), progress_bar=False, log_formats=())
        seconds[learner] = (time.perf_counter() - start) / blocks
    return seconds


def print_sac(steps: int, repeats: int) -> float:
    fused, unfused, baseline = bench_sac(steps, repeats)
    print("SAC gradient steps/s (256×2, batch 256)")
    print(f"  fused update, MixedReplayBuffer       {fused:7.1f}   ({fused / baseline:.2f}× plain SB3; goal ≥ 2.5×)")
    print(f"  SB3's SAC.train(), MixedReplayBuffer  {unfused:7.1f}   ({unfused / baseline:.2f}×)")
    print(f"  plain SB3 SAC (ReplayBuffer)          {baseline:7.1f}\n")
    return baseline


def bench_learners(steps: int, repeats: int, device: str = "cpu", only: list[str] | None = None) -> dict[str, float]:
    """Gradient steps/s of every model-free learner at SAC's sizes (256×2, batch 256; CQL at 256×2
    here too, not its 3×256 default, so that the rows compare the update, not the network), and of
    FB at its CPU-scale sizes, on ``device``: blocks of 50 steps of the agent's training loop. BRAC-p is
    measured with SB3's entropy term and log-std range where its config has them (the agent an older
    checkout trains), so that two checkouts compare the same maths. ``only``: these names."""
    import dataclasses as dc
    from stable_baselines3.common.logger import configure

    from dynshift_agents.algorithms import AWR, BC, BCQ, BEAR, BRACP, CQL, IQL, TD3BC

    rng = np.random.default_rng(0)
    data = fake_transitions(100_000, rng)
    data = dataclasses.replace(data, episode_returns=np.array([0.0, 1000.0]))  # IQL's reward scale
    rates = {}
    for cls in (BC, TD3BC, IQL, CQL, BCQ, BEAR, BRACP, AWR):
        if only and cls.name not in only:
            continue
        extra = {BRACP: {"behaviour_steps": 0, "warm_start": 0}, BEAR: {"warmup_steps": 0}}.get(cls, {})  # full steps
        if cls is BRACP and "log_std_range" in {f.name for f in dc.fields(cls.config_class)}:
            extra |= {"ent_coef": "auto", "log_std_range": (-20.0, 2.0)}
        agent = cls("DynShift/HalfCheetah-v0", data, cls.config_class(net_arch=(256, 256), batch_size=256, **extra),
                    seed=0, device=device)
        agent.set_logger(configure(None, []))
        agent._progress_remaining = 1.0  # as learn() sets it (older checkouts do not set it at construction)
        rates[cls.name] = timed(lambda: agent.train_block(50), max(1, steps // 50), repeats) * 50
    from dynshift_agents.algorithms import FB

    for label, norm in (("fb (CPU scale)", True), ("fb (CPU scale, plain ReLU input layers)", False)):
        if only and "fb" not in only:
            continue
        fb = FB("DynShift/HalfCheetah-v0", data, FB.config_class(batch_size=256, input_layer_norm=norm), seed=0,
                device=device)
        rates[label] = timed(lambda: fb.train_block(50), max(1, steps // 50), repeats) * 50
    return rates


def print_learners(steps: int, repeats: int, baseline: float, device: str = "cpu") -> None:
    print(f"model-free learners, gradient steps/s (256×2, batch 256, on {device})")
    print(f"  {'plain SB3 SAC':<14} {baseline:7.1f}")
    for name, rate in bench_learners(steps, repeats, device).items():
        print(f"  {name:<14} {rate:7.1f}   ({rate / baseline:.2f}× plain SB3 SAC)")
    print()


def compare_learners(steps: int, repeats: int, device: str, threads: int, other: str, rounds: int = 2,
                     only: list[str] | None = None) -> None:
    """Every learner's rate with this checkout's code and with the code of the checkout ``other`` (its
    ``dynshift_agents`` imported in a subprocess, measured by this script), alternating ``rounds`` times;
    the best window of each side, and their ratio."""
    import json
    import os
    import subprocess
    import sys

    here: dict[str, list[float]] = {}
    there: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, rate in bench_learners(steps, repeats, device, only).items():
            here.setdefault(name, []).append(rate)
        command = [sys.executable, __file__, "--sections", "learners-json", "--threads", str(threads), "--device", device,
                   "--rounds", str(rounds), *(["--only", *only] if only else [])]
        if repeats == 3:
            command.append("--quick")
        output = subprocess.run(command, env=os.environ | {"PYTHONPATH": os.path.abspath(other)}, check=True,
                                capture_output=True, text=True).stdout
        for name, rate in json.loads(output.strip().splitlines()[-1]).items():
            there.setdefault(name, []).append(rate)
    print(f"model-free learners and FB, gradient steps/s on {device}: this checkout against {other} "
          f"(best of {rounds} alternating rounds)")
    print(f"  {'learner':<42} {'this':>8} {'other':>8} {'ratio':>7}")
    for name in here:
        a, b = max(here[name]), max(there.get(name, [float("nan")]))
        print(f"  {name:<42} {a:8.1f} {b:8.1f} {a / b:6.2f}×")
    print()


def bench_adversary(steps: int, repeats: int, precision: str = "fp32") -> float:
    from dynshift_agents.algorithms import RAMBO, RAMBOConfig

    rng = np.random.default_rng(0)
    data = fake_transitions(20_000, rng)
    agent = RAMBO("DynShift/HalfCheetah-v0", WorldModel(OBS, ACT, WorldModelConfig.rambo(precision=precision)), data,
                  RAMBOConfig(rollout_length=5, adversary_batch_size=256, bc_steps=0), seed=0)
    agent.learner.set_logger(__import__("stable_baselines3.common.logger", fromlist=["configure"]).configure(None, []))
    return timed(agent.adversary_step, max(1, steps // 10), repeats)


def bench_grid(settings: int, episodes: int, workers: int, tmp: str) -> tuple[float, float]:
    from pathlib import Path

    from dynshift_agents.behaviour import load_policy
    from dynshift_agents.evaluation import run_grid

    grid = [{"mass": m, "damping": d} for m, d in zip(np.linspace(0.5, 1.5, settings), np.linspace(1.5, 0.5, settings))]
    env_id = "DynShift/HalfCheetah-v0"
    start = time.perf_counter()
    run_grid({"expert": "expert"}, env_id, grid, episodes, Path(tmp) / "records.jsonl",
             loader=_load_expert, workers=workers, settings_per_batch=max(1, settings // workers))
    batched = time.perf_counter() - start

    policy = load_policy("halfcheetah", "expert")
    start = time.perf_counter()
    for setting in grid:
        for episode in range(episodes):
            env = gym.make(env_id, **setting)
            obs, _ = env.reset(seed=episode)
            done = False
            while not done:
                action, _ = policy.predict(obs, deterministic=True)
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
            env.close()
    serial = time.perf_counter() - start
    return batched, serial


def _load_expert(_name):
    from dynshift_agents.behaviour import load_policy

    return load_policy("halfcheetah", "expert")


def bench_rambo(steps: int, repeats: int) -> None:
    fp32, bf16 = bench_adversary(steps, repeats), bench_adversary(steps, repeats, "bf16")
    print("RAMBO adversarial model update (one step of 256 rollout states + 256 real rows)")
    print(f"  updates/s, fp32                    {fp32:7.1f}   (public reimplementation: about 34)")
    print(f"  updates/s, bf16 products           {bf16:7.1f}   (a world model with precision=bf16)")
    print(f"  precision=auto here: {resolve('auto')}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter windows")
    parser.add_argument("--workers", type=int, default=2, help="grid evaluation processes")
    parser.add_argument("--device", default="cpu", help="torch device of the learners' section (cpu, cuda, cuda:N)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="learners: only these (bc td3bc iql cql bcq bear bracp awr fb)")
    parser.add_argument("--rounds", type=int, default=2, help="--compare-with: alternating rounds (default 2)")
    parser.add_argument("--compare-with", metavar="CHECKOUT",
                        help="learners: also measure the dynshift_agents of another checkout (e.g. the commit before a "
                             "change, `git worktree add`), alternating, and print the ratios")
    parser.add_argument("--sections", nargs="+", default=["world-model", "rest"],
                        choices=["world-model", "sac", "compile", "loop", "rambo", "learners", "learners-json", "rest"],
                        help="world-model, sac (fused against SB3), compile (the fused update with and without torch.compile), "
                             "loop (the whole MOPO loop), rambo, learners (model-free beside SB3 SAC), rest "
                             "(rollouts, SAC, learners, RAMBO, grid); default world-model rest")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    repeats, steps = (3, 50) if args.quick else (5, 200)
    if args.sections == ["learners-json"]:  # one side of --compare-with
        import json

        print(json.dumps(bench_learners(steps, repeats, args.device, args.only)))
        return
    print(f"{machine()}\n{args.threads} torch thread(s); medians of {repeats} windows\n")
    if args.compare_with:
        compare_learners(steps, repeats, args.device, args.threads, args.compare_with, args.rounds, args.only)
        if args.sections == ["learners"]:
            return

    if "world-model" in args.sections:
        batched, loop = bench_world_model(steps, repeats)
        bf16, _ = bench_world_model(steps, repeats, "bf16")
        print("world model gradient steps/s (7 × 4×200, batch 256 per member)")
        print(f"  batched ensemble          {batched:8.1f}   (≥ 86 steps/s: {'met' if batched >= 86 else 'not met'})")
        print(f"  batched, bf16 autocast    {bf16:8.1f}   (precision=bf16; ≥ 86 steps/s: {'met' if bf16 >= 86 else 'not met'})")
        print(f"  per-member loop (fp32)    {loop:8.1f}")
        print(f"  ratio batched / loop      {batched / loop:8.2f}×   (goal ≥ 1.5×); bf16 / loop {bf16 / loop:.2f}×")
        print(f"  precision=auto here: {resolve('auto')}\n")
    if "rest" not in args.sections:
        if "loop" in args.sections:
            start_states = 10_000 if args.quick else 50_000
            seconds = bench_mopo_loop(1 if args.quick else 3, start_states)
            print(f"whole MOPO loop, seconds per 1 000 gradient steps ({start_states} start states × 5 model steps)")
            print(f"  fused SAC update     {seconds['sac']:6.1f} s")
            print(f"  SB3's SAC.train()    {seconds['sac-sb3']:6.1f} s")
            print(f"  ratio                {seconds['sac-sb3'] / seconds['sac']:6.2f}×   (goal ≥ 3×)\n")
        if "compile" in args.sections:
            result = bench_compiled_sac(steps, repeats)
            print("fused SAC update, gradient steps/s (256×2, batch 256), with and without torch.compile")
            print(f"  eager                 {result['eager']:7.1f}")
            print(f"  torch.compile         {result['compiled']:7.1f}   ({result['compiled'] / result['eager']:.2f}× eager; "
                  f"compiling took {result['compile_seconds']:.0f} s)")
            print(f"  largest parameter difference after the same updates: {result['difference']:.1e}\n")
        if "sac" in args.sections or "learners" in args.sections:
            baseline = print_sac(steps, repeats)
        if "learners" in args.sections:
            print_learners(steps, repeats, baseline, args.device)
        if "rambo" in args.sections:
            bench_rambo(steps, repeats)
        return

    start_states = 10_000 if args.quick else 50_000
    rates = bench_rollout(repeats, start_states)
    print(f"model rollout transitions/s ({start_states} start states × 5 steps, MOPO penalty, SAC actor)")
    print(f"  chunks of 4096     {rates[4096]:10.0f}")
    print(f"  one batch          {rates[start_states]:10.0f}")
    print(f"  ratio              {rates[4096] / rates[start_states]:10.2f}×\n")

    baseline = print_sac(steps, repeats)

    print_learners(steps, repeats, baseline)

    bench_rambo(steps, repeats)

    import tempfile

    settings, episodes = (4, 2) if args.quick else (9, 3)
    with tempfile.TemporaryDirectory() as tmp:
        batched, serial = bench_grid(settings, episodes, args.workers, tmp)
    steps = settings * episodes * 1000
    print(f"grid evaluation ({settings} settings × {episodes} episodes × 1000 steps, HalfCheetah, SAC expert actor)")
    print(f"  batched, {args.workers} worker(s)       {batched:6.1f} s  ({steps / batched:7.0f} env steps/s)")
    print(f"  one setting at a time      {serial:6.1f} s  ({steps / serial:7.0f} env steps/s)")
    print(f"  ratio                      {serial / batched:6.2f}×   (goal ≥ 3×)")


if __name__ == "__main__":
    main()

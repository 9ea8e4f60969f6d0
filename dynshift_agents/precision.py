"""Which precision the matrix products of the world model use: ``"fp32"``, ``"bf16"``, or ``"auto"``.

bf16 matrix products (``torch.autocast`` on the CPU) are about 2× faster for the ensemble's shapes on
CPUs with bf16 instructions (Intel AMX, AVX512-BF16 on Intel and AMD Zen 4), and about ten times
*slower* on CPUs without them (AVX2-only machines such as older AMD EPYC), where oneDNN emulates them.
``"auto"`` therefore picks bf16 only where both hold:

1. the CPU advertises bf16 units (``amx_bf16`` or ``avx512_bf16`` in ``/proc/cpuinfo``); without them
   the answer is fp32 at once, with nothing measured;
2. a short measurement (about half a second) of one fitting step at the world model's shapes is at
   least :data:`MIN_SPEEDUP` times faster in bf16 than in fp32.

The measured choice is cached per machine (CPU model, bf16 flags, torch version) in
``$DYNSHIFT_HOME/precision.json``, so it is measured once. Whatever is chosen is written into the
world model's config (``WorldModel`` resolves ``"auto"`` when it is built), so every saved model and
every checkpoint records the precision it was fitted with; a result never changes precision silently.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from dynshift_agents.home import dynshift_home

PRECISIONS = ("auto", "fp32", "bf16")
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""``/proc/cpuinfo`` flags of CPUs with bf16 matrix instructions."""
MIN_SPEEDUP = 1.2
"""bf16 must make the measured fitting step at least this much faster to be chosen by ``"auto"``."""


def validate(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    return precision


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux; empty where ``/proc/cpuinfo`` does not exist)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_model() -> str:
    """The CPU's model name, as ``lscpu`` prints it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_units() -> list[str]:
    """The bf16 flags this CPU advertises (empty: no bf16 units)."""
    flags = cpu_flags()
    return [flag for flag in BF16_FLAGS if flag in flags]


def machine() -> str:
    """What the cached choice is keyed by: CPU model, its bf16 flags, torch and its capability."""
    return (f"{cpu_model()} | bf16 flags: {','.join(bf16_units()) or 'none'} | torch {torch.__version__} "
            f"{torch.backends.cpu.get_cpu_capability()}")


def measure_bf16_speedup(seconds: float = 0.25) -> float:
    """fp32 time / bf16 time of one world-model fitting step (7 members, 4×200 SiLU, batch 256,
    HalfCheetah's sizes; forward and backward), each timed for about ``seconds`` after a warm-up."""
    generator = torch.Generator().manual_seed(0)
    widths = (23, 200, 200, 200, 200, 36)
    weights = [torch.randn(7, a, b, generator=generator).div_(a ** 0.5).requires_grad_() for a, b in zip(widths, widths[1:])]
    x = torch.randn(7, 256, widths[0], generator=generator)

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            h = x
            for w in weights[:-1]:
                h = F.silu(torch.bmm(h, w))
            out = torch.bmm(h, weights[-1])
        out.float().square().mean().backward()

    def rate(bf16: bool) -> float:
        step(bf16)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step(bf16)
            calls += 1
        return calls / (time.perf_counter() - start)

    return rate(True) / rate(False)


def _cache_path() -> Path:
    return dynshift_home() / "precision.json"


@functools.cache
def auto_precision() -> str:
    """``"bf16"`` on a CPU with bf16 units where bf16 measured at least :data:`MIN_SPEEDUP` faster,
    else ``"fp32"`` (the measurement is cached per machine in ``$DYNSHIFT_HOME/precision.json``)."""
    if not bf16_units():
        return "fp32"
    key, path = machine(), _cache_path()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        speedup = measure_bf16_speedup()
        cache[key] = {"precision": "bf16" if speedup >= MIN_SPEEDUP else "fp32", "bf16_speedup": round(speedup, 3),
                      "threads": torch.get_num_threads(), "measured": time.strftime("%Y-%m-%d")}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1))
        os.replace(tmp, path)
    return cache[key]["precision"]


def resolve(precision: str) -> str:
    """``"fp32"`` or ``"bf16"``: the setting itself, or what ``"auto"`` chooses on this machine."""
    return auto_precision() if validate(precision) == "auto" else precision


def autocast(precision: str):
    """The context in which matrix products run at ``precision`` (resolved first)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=resolve(precision) == "bf16")

"""Run a sweep's graph on Ray: one Ray task (one CPU, one torch thread) per ``dynshift`` command.

``ray.init()`` starts Ray on this machine unless an address names a running cluster; the driver
submits each task once its dependencies are done, never more at once than there are CPUs (so
"running" means running), and shows done / running / failed with an ETA. Each task's output goes
to its log file.

- A run that diverges (``dynshift train`` exits with code 3) is recorded as diverged (a file in its
  run directory) and never retried; its evaluations are skipped.
- A task that fails otherwise is reported with its log; what depends on it is blocked, the rest of
  the sweep goes on.
- Ctrl-C or ``kill`` (SIGINT or SIGTERM: a sweep left running under nohup is stopped with ``kill``)
  stops the running commands: each is terminated by its Ray worker, or by the kernel when the worker
  itself dies (a driver killed with SIGKILL). Every command resumes, so running the sweep again
  finishes it without repeating what was finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from dynshift_agents.sweep.layout import DIVERGED, diverged
from dynshift_agents.sweep.plan import Task, task_environment

RESUME_HINT = "run the same command again to finish the sweep"
"""What an interrupted sweep tells its user: every command resumes, so nothing finished is redone."""

DIVERGED_EXIT = 3
"""``dynshift train``'s exit code for a run that diverged."""


@dataclass
class Outcome:
    key: str
    status: str
    """done, diverged, failed or blocked (a dependency failed)."""
    seconds: float = 0.0
    log: Path | None = None
    message: str = ""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The command is terminated if the Ray worker that started it dies (Linux)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_command(arguments: list[str], log: str, env: dict[str, str], cwd: str) -> tuple[int, float, str]:
    """``dynshift ARGUMENTS`` with output appended to ``log``; (exit code, seconds, host). The body
    of every Ray task; a cancelled task terminates its command before it returns."""
    import platform
    import shlex

    Path(log).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ dynshift {' '.join(shlex.quote(a) for a in arguments)}\n")
        f.flush()
        child = subprocess.Popen([sys.executable, "-m", "dynshift_agents", *arguments], stdout=f, stderr=subprocess.STDOUT,
                                 env=os.environ | env, cwd=cwd,
                                 preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        try:
            while (code := child.poll()) is None:  # a Python-level wait: ray.cancel's KeyboardInterrupt
                time.sleep(0.2)                    # arrives here (not inside a blocking waitpid)
        except BaseException:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    return code, time.perf_counter() - start, platform.node()


def start_ray(address: str | None, cpus: int | None) -> bool:
    """Connect to the cluster at ``address`` or start Ray here with ``cpus`` CPUs; True if this call
    started it (and should shut it down)."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("dynshift sweep runs its tasks on Ray, which is not installed: "
                           "pip install -e \".[sweep]\" (or use --dry-run to see the plan)") from None
    if ray.is_initialized():
        return False
    options = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if address is None:
        # Ray starts its workers at nice 15, so training beside any other process would crawl; on a
        # cluster the same is set with `RAY_worker_niceness=0 ray start ...` (docs/sweeps.md)
        os.environ.setdefault("RAY_worker_niceness", "0")
        # "local": always a Ray of this sweep's own, never a cluster found running on the machine
        # (another sweep's, or a RAY_ADDRESS left set); a cluster is named with --address
        ray.init(address="local", num_cpus=cpus or os.cpu_count(), object_store_memory=256 * 1024 ** 2, **options)
    else:
        # Ray ≥ 2.59 starts clusters with token authentication, but a driver connecting to an address
        # defaults to no token (and is refused): use the cluster's token (~/.ray/auth_token or
        # RAY_AUTH_TOKEN) unless told otherwise (RAY_AUTH_MODE=disabled)
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        ray.init(address=address, **options)
    return True


def execute(tasks: list[Task], write_report=None, address: str | None = None, cpus: int | None = None,
            progress: bool = True, cwd: str | os.PathLike | None = None) -> list[Outcome]:
    """Run every task of ``tasks`` that is not done, on Ray; the report task by calling
    ``write_report()`` here. Returns one outcome per task that was to run (in finishing order)."""
    import ray

    todo = [t for t in tasks if not t.is_done()]
    status: dict[str, str] = {t.key: "done" for t in tasks if t not in todo}
    outcomes: list[Outcome] = []
    if not todo:
        return outcomes
    started = start_ray(address, cpus)
    # SIGTERM as Ctrl-C; installed after ray.init, whose own handler would end the driver at once
    in_main_thread = threading.current_thread() is threading.main_thread()  # where Python takes signals
    previous_sigterm = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main_thread else None
    capacity = cpus or max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1, max_retries=2)(run_command)  # retried only if a worker or node dies
    env, cwd = task_environment(), str(Path(cwd or Path.cwd()).resolve())
    running: dict = {}
    bar = tqdm(total=len(todo), desc="sweep", unit="task", disable=not progress, dynamic_ncols=True)

    def finish(task: Task, outcome: Outcome) -> None:
        status[task.key] = outcome.status
        outcomes.append(outcome)
        bar.update(1)
        text = f"{outcome.status:<8} {task.key}" + (f" ({outcome.seconds:.0f} s)" if outcome.seconds else "")
        if outcome.status in ("failed", "blocked"):
            text += f": {outcome.message}" + (f"; see {outcome.log}" if outcome.log else "")
        bar.write(text)

    shown = {}

    def postfix() -> None:
        counts = dict(running=len(running), failed=sum(1 for s in status.values() if s in ("failed", "blocked")))
        if counts != shown:  # redrawn on a change only (a log file gets one line per change)
            shown.update(counts)
            bar.set_postfix(counts)

    try:
        while len(status) < len(tasks):
            settled = len(status)
            for task in todo:
                if task.key in status or any(ref_task is task for ref_task in running.values()):
                    continue
                deps = [status.get(d) for d in task.deps]
                if any(s in ("failed", "blocked") for s in deps):
                    finish(task, Outcome(task.key, "blocked", message="a task it needs failed"))
                    continue
                if not all(s in ("done", "diverged") for s in deps):
                    continue
                if task.run_dir is not None and task.kind != "train" and diverged(task.run_dir):
                    finish(task, Outcome(task.key, "diverged", message="its run diverged"))
                elif task.command is None:
                    begin = time.perf_counter()
                    try:
                        write_report()
                        finish(task, Outcome(task.key, "done", time.perf_counter() - begin))
                    except Exception as error:  # a report that cannot be written does not lose the runs
                        finish(task, Outcome(task.key, "failed", message=f"{type(error).__name__}: {error}"))
                elif len(running) < capacity:
                    running[remote.remote(task.command, str(task.log), env, cwd)] = task
            postfix()
            if not running:
                if len(status) == settled:  # nothing can start: a dependency outside the plan
                    raise RuntimeError(f"tasks wait for dependencies that never finish: "
                                       f"{[t.key for t in todo if t.key not in status]}")
                continue
            ready, _ = ray.wait(list(running), num_returns=1, timeout=2.0)
            for ref in ready:
                task = running.pop(ref)
                try:
                    code, seconds, host = ray.get(ref)
                except ray.exceptions.LocalRayletDiedError:  # Ray itself is gone: every task would fail
                    raise RuntimeError("Ray stopped under the sweep (`ray stop` stops every Ray process on a machine, "
                                       "a local sweep's too); run the sweep again to resume it") from None
                except Exception as error:  # the worker or its node died more often than retried
                    finish(task, Outcome(task.key, "failed", log=task.log, message=f"{type(error).__name__}"))
                    continue
                if task.kind == "train" and code == DIVERGED_EXIT:
                    last = [line for line in task.log.read_text().splitlines() if line.strip()][-1:]
                    (task.run_dir / DIVERGED).write_text("".join(last) + "\n")
                    finish(task, Outcome(task.key, "diverged", seconds, task.log))
                elif code != 0:
                    finish(task, Outcome(task.key, "failed", seconds, task.log, f"exit code {code} on {host}"))
                elif not task.is_done():
                    finish(task, Outcome(task.key, "failed", seconds, task.log, "finished without its output"))
                else:
                    finish(task, Outcome(task.key, "done", seconds, task.log))
            # the counts are shown after the next submissions, so a log gets no "running=0" line
            # between a task that finished and the one that took its CPU
    except KeyboardInterrupt:
        # said (and flushed) before Ray is asked to stop anything: should Ray's own shutdown fail, the
        # user still reads what happened and what to do
        bar.write(f"interrupted: stopping {len(running)} running task(s); {RESUME_HINT}")
        sys.stdout.flush()
        for ref in running:
            ray.cancel(ref)
        ray.wait(list(running), num_returns=len(running), timeout=30)
        raise
    finally:
        bar.close()
        if previous_sigterm is not None:  # None: Ray's own (C-level) handler, which Python cannot put back
            signal.signal(signal.SIGTERM, previous_sigterm)
        if started:
            ray.shutdown()
    return outcomes

"""Studies as sweeps: a TOML spec (:mod:`.spec`) → a dependency graph of ``dynshift`` commands
(:mod:`.plan`, over the file layout of :mod:`.layout`) → run on Ray, locally or on a cluster
(:mod:`.execute`) → tables and figures (:mod:`.report`). ``dynshift sweep SPEC`` is the command line."""

from dynshift_agents.sweep.plan import Task, build_plan
from dynshift_agents.sweep.spec import SpecError, SweepSpec, load_spec, parse_spec

__all__ = ["SpecError", "SweepSpec", "Task", "build_plan", "load_spec", "parse_spec"]

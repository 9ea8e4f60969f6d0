"""Where DynShift keeps what it computes once per machine: world models, the precision choice."""

from __future__ import annotations

import os
from pathlib import Path


def dynshift_home() -> Path:
    """``$DYNSHIFT_HOME``, default ``~/.dynshift``."""
    return Path(os.environ.get("DYNSHIFT_HOME", Path.home() / ".dynshift"))

"""MkDocs hook: ``{{ docstring module.Object }}`` in a page becomes that object's live docstring.

The environments' docstrings are assembled at import time (each robot's description plus the shared
table of DynShift arguments), which static analysis cannot read; this hook imports the object and
inserts its docstring, its headings moved two levels down so that they nest under the page's own.
"""

from __future__ import annotations

import importlib
import inspect
import re

PLACEHOLDER = re.compile(r"\{\{ docstring ([\w.]+) \}\}")


def _docstring(path: str) -> str:
    module, _, name = path.rpartition(".")
    text = inspect.cleandoc(getattr(importlib.import_module(module), name).__doc__ or "")
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.M)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return PLACEHOLDER.sub(lambda m: _docstring(m.group(1)), markdown)

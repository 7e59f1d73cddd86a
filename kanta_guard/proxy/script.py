"""The guard as a mitmproxy script: ``mitmdump -s`` loads its addons from this module.

Shipped inside the package, so an installed guard needs no checkout: ``mitmdump -s
"$(python -c 'import kanta_guard.proxy.script as s; print(s.__file__)')"``, or the checkout's
``addons/kanta_guard.py``, which imports this. Loaded as a script, the guard sits in the middle of
mitmproxy's addon chain (see ``addons/kanta_guard.py``); ``kanta-guard run``/``web`` place it
where it belongs and are to be preferred.

mitmproxy treats the module as an addon whose ``addons`` are the guard's; its ``load`` runs
before theirs, so mitmproxy's output is masked from then on.
"""

from __future__ import annotations

from typing import Any

# Absolute imports: mitmproxy loads this file by its path, as a module of its own name.
from kanta_guard.proxy import quiet
from kanta_guard.proxy.launch import addons as _addons
from kanta_guard.proxy.state import GuardState

__all__ = ["addons", "load", "make_addons"]


def make_addons() -> list[object]:
    """A fresh set of the guard's addons, sharing one new state (a reloaded script gets its own)."""
    return _addons(GuardState())


def load(loader: Any) -> None:
    """mitmproxy's own output (log lines, error pages, the flow dumper) never shows a raw value."""
    quiet.install()


addons = make_addons()

"""mitmproxy script: ``mitmdump -s addons/kanta_guard.py`` loads kanta-guard on its own.

Options: ``--set kanta_guard_policy=FILE`` (default: the embedded policy), ``--set
kanta_guard_log=FILE``, ``kanta_guard_workers``, ``kanta_guard_scan_timeout``.

Loaded as a script, the guard sits in the middle of mitmproxy's addon chain, before
``modify_body``, ``map_remote`` and the like: it refuses to start when one of those is set (it
could not judge what they change). ``kanta-guard run``/``web`` place it last and have no such
limit; prefer them. The addons live in the package (:mod:`kanta_guard.proxy.script`); this file
only finds them, in the checkout beside it when the package is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runs from a checkout too, without the package installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from kanta_guard.proxy.script import load, make_addons  # noqa: E402

__all__ = ["addons", "load"]

# Built here, not imported: a script mitmproxy reloads gets fresh addons.
addons = make_addons()

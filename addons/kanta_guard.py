"""mitmproxy script: ``mitmdump -s addons/kanta_guard.py`` loads kanta-guard on its own.

Options: ``--set kanta_guard_policy=FILE`` (default: the embedded policy), ``--set
kanta_guard_log=FILE``, ``kanta_guard_workers``, ``kanta_guard_scan_timeout``.

Loaded as a script, the guard sits in the middle of mitmproxy's addon chain, before
``modify_body``, ``map_remote`` and the like: it refuses to start when one of those is set (it
could not judge what they change). ``kanta-guard run``/``web`` place it last and have no such
limit; prefer them.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runs from a checkout too, without the package installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from kanta_guard.proxy import quiet  # noqa: E402
from kanta_guard.proxy.launch import addons as _addons  # noqa: E402
from kanta_guard.proxy.state import GuardState  # noqa: E402

# mitmproxy's own output (log lines, error pages, the flow dumper) never shows a raw value.
quiet.install()
addons = _addons(GuardState())

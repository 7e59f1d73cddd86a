"""mitmproxy script: ``mitmdump -s addons/kanta_guard.py`` loads kanta-guard on its own.

Options: ``--set kanta_guard_policy=FILE`` (default: the embedded policy) and
``--set kanta_guard_log=FILE``. The ``kanta-guard run``/``web`` commands load this same script.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runs from a checkout too, without the package installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from kanta_guard.mitm import KantaGuard  # noqa: E402

addons = [KantaGuard()]

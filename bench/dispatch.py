"""Time one event's dispatch through mitmdump's master: mitmproxy's addon manager against the
guard's cached one (kanta_guard.proxy.dispatch), with mitmdump's default addons and the guard's.

    .venv/bin/python bench/dispatch.py [--events N]

The events are ``update`` and ``requestheaders`` on a test flow (hooks that the default addons
and the guard's answer without scanning anything), so the figure is the dispatch itself.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from mitmproxy import hooks, options
from mitmproxy.addonmanager import traverse
from mitmproxy.test import tflow
from mitmproxy.tools.dump import DumpMaster

from kanta_guard.proxy import dispatch
from kanta_guard.proxy.launch import install


async def _per_event(cached: bool, guard: bool, events: int, tmp: Path) -> dict[str, float]:
    master = DumpMaster(options.Options(), with_termlog=False, with_dumper=False)
    try:
        if guard:
            settings = {"kanta_guard_log": str(tmp / "log.jsonl"), "kanta_guard_workers": 0}
            state = install(master, settings)  # (installs the cached dispatch itself)
            if not cached:
                master.addons.__class__ = dispatch.CachedDispatch.__mro__[1]
        elif cached:
            dispatch.install(master)
        flow = tflow.tflow()
        out: dict[str, float] = {"addons": float(len(list(traverse(master.addons.chain))))}
        for name in ("update", "requestheaders"):
            event = hooks.UpdateHook([flow]) if name == "update" else hooks.all_hooks[name](flow)
            await master.addons.trigger_event(event)  # (builds the table, warms up)
            start = time.perf_counter()
            for _ in range(events):
                await master.addons.trigger_event(event)
            out[name] = (time.perf_counter() - start) / events * 1e6
        if guard:
            state.log.close()  # type: ignore[union-attr]
        return out
    finally:
        master._legacy_log_events.uninstall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for guard in (False, True):
            rows = {c: asyncio.run(_per_event(c, guard, args.events, Path(tmp))) for c in (0, 1)}
            label = "mitmdump + guard" if guard else "mitmdump"
            print(f"{label} ({rows[0]['addons']:.0f} addons walked):")
            for name in ("update", "requestheaders"):
                plain, cached = rows[0][name], rows[1][name]
                print(
                    f"  {name:15} mitmproxy's manager {plain:6.1f} µs/event   "
                    f"cached {cached:5.1f} µs/event   ({plain / cached:4.1f}x)"
                )


if __name__ == "__main__":
    main()

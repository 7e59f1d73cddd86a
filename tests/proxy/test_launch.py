"""Tests for kanta_guard.proxy.launch: the guard's addons where their behaviour needs them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mitmproxy import options
from mitmproxy.addonmanager import traverse
from mitmproxy.tools.dump import DumpMaster

from kanta_guard.proxy.chain import GuardChain
from kanta_guard.proxy.launch import install
from kanta_guard.proxy.state import GuardState


def test_guard_judges_last_and_redacts_first(tmp_path: Path) -> None:
    """In a real master the redactor runs first and the HTTP guard after every other addon."""

    async def build() -> tuple[DumpMaster, GuardState]:
        master = DumpMaster(options.Options(), with_termlog=False)
        settings = {"kanta_guard_log": str(tmp_path / "l.jsonl"), "kanta_guard_workers": 0}
        return master, install(master, settings)

    master, state = asyncio.run(build())
    names = [type(a).__name__ for a in traverse(master.addons.chain)]
    assert names[0] == "Redactor"
    # The rest stand last, as one entry that hands each hook to its members in order.
    last = master.addons.chain[-1]
    assert isinstance(last, GuardChain) and not hasattr(last, "addons")
    members = [type(a).__name__ for a in last.members]
    assert members[-5:] == ["ConnectionGuard", "DimseGuard", "Metrics", "Status", "HttpGuard"]
    assert names.index("ModifyBody") < names.index("GuardChain")
    assert master.addons.get("httpguard") is last.members[-1]  # found by name all the same
    assert names.index("Redactor") < min(names.index("Save"), names.index("Dumper"))
    assert state.ready  # configured at once from the settings, before the proxy listens
    assert master.options.rawtcp is False and master.options.websocket is False
    state.log.close()  # type: ignore[union-attr]

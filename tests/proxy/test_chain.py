"""Tests for kanta_guard.proxy.chain: the guard's addons as one entry of mitmproxy's chain."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mitmproxy import exceptions, hooks, options
from mitmproxy.test import tflow
from mitmproxy.tools.dump import DumpMaster

from kanta_guard.proxy.chain import GuardChain
from kanta_guard.proxy.launch import addons, install
from kanta_guard.proxy.state import GuardState


class Recorder:
    """An addon that notes each hook call, in one shared list."""

    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name = name
        self.calls = calls
        self.fail = fail

    def request(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.request")
        if self.fail:
            raise RuntimeError("boom")

    async def response(self, flow: Any) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.name}.response")


def test_every_member_hook_is_dispatched() -> None:
    """The chain has exactly the hooks its members have (the guard's real addons): none is lost,
    which for the HTTP guard's ``request`` would let requests pass unjudged."""
    members = addons(GuardState())[1:]
    chain = GuardChain(members)
    for hook in hooks.all_hooks:
        has = any(callable(getattr(m, hook, None)) for m in members)
        assert callable(getattr(chain, hook, None)) == (has and hook != "load"), hook
    for critical in ("request", "requestheaders", "http_connect", "tls_clienthello", "response"):
        assert callable(getattr(chain, critical, None)), critical


def test_order_errors_and_async() -> None:
    """Members run in order; one member's error is logged and the next still runs; async
    hooks are awaited; a member without the hook is passed over."""
    calls: list[str] = []
    chain = GuardChain([Recorder("a", calls, fail=True), object(), Recorder("b", calls)])
    chain.registered()
    flow = tflow.tflow()
    chain.request(flow)  # type: ignore[attr-defined]
    asyncio.run(chain.response(flow))  # type: ignore[attr-defined]
    assert calls == ["a.request", "b.request", "a.response", "b.response"]
    assert not hasattr(chain, "tcp_message")


def test_an_error_on_a_flows_traffic_kills_it() -> None:
    """A member's error in a request hook kills the flow (mitmproxy would forward it); an error
    in a hook that carries no traffic leaves the flow alone."""
    calls: list[str] = []
    chain = GuardChain([Recorder("a", calls, fail=True)])
    flow = tflow.tflow()
    assert flow.killable
    chain.request(flow)  # type: ignore[attr-defined]
    assert flow.error is not None and not flow.live

    class FailsOnError:
        def error(self, flow: Any) -> None:
            raise RuntimeError("boom")

    other = tflow.tflow()
    GuardChain([FailsOnError()]).error(other)  # type: ignore[attr-defined]
    assert other.error is None and other.live


def test_an_error_is_logged_as_an_addon_error(caplog: pytest.LogCaptureFixture) -> None:
    """A member's exception is an ERROR record (mitmproxy ends a start on one), naming it."""
    calls: list[str] = []
    chain = GuardChain([Recorder("a", calls, fail=True)])
    with caplog.at_level(logging.ERROR, logger="kanta_guard"):
        chain.request(tflow.tflow())  # type: ignore[attr-defined]
    assert any("Addon error: boom" in r.getMessage() for r in caplog.records)


def test_options_error_and_halt_pass_through() -> None:
    """A refused option (OptionsError) and AddonHalt are not swallowed."""

    class Refuses:
        def configure(self, updated: set[str]) -> None:
            raise exceptions.OptionsError("bad option")

    class Halts:
        def request(self, flow: Any) -> None:
            raise exceptions.AddonHalt

    with pytest.raises(exceptions.OptionsError):
        GuardChain([Refuses()]).configure(set())  # type: ignore[attr-defined]
    with pytest.raises(exceptions.AddonHalt):
        GuardChain([Halts()]).request(tflow.tflow())  # type: ignore[attr-defined]


def test_in_a_real_master_each_hook_runs_once(tmp_path: Any) -> None:
    """Registered in a real master, a member's hook runs once per event (mitmproxy's own walk
    no longer reaches the members once registered); the guard installed so has its members'
    options and commands registered."""

    async def run() -> list[str]:
        master = DumpMaster(options.Options(), with_termlog=False)
        calls: list[str] = []
        chain = GuardChain([Recorder("x", calls)])
        master.addons.add(chain)
        chain.registered()
        assert master.addons.get("x") is chain.members[0]
        await master.addons.trigger_event(hooks.all_hooks["request"](tflow.tflow()))
        guarded = DumpMaster(options.Options(), with_termlog=False)
        settings = {"kanta_guard_log": str(tmp_path / "l.jsonl"), "kanta_guard_workers": 0}
        state = install(guarded, settings)
        assert "kanta_guard_workers" in guarded.options
        assert "kanta_guard.status" in guarded.commands.commands
        assert not hasattr(guarded.addons.chain[-1], "addons")
        state.log.close()  # type: ignore[union-attr]
        return calls

    assert asyncio.run(run()) == ["x.request"]

"""Tests for kanta_guard.proxy.dispatch: mitmproxy's event dispatch with each event's hooks
looked up once. Every test runs the same chain under mitmproxy's own addon manager and under
the cached one and asks for the same calls, in the same order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions, hooks, options
from mitmproxy.addonmanager import AddonManager
from mitmproxy.master import Master
from mitmproxy.test import tflow
from mitmproxy.tools.dump import DumpMaster

from kanta_guard.proxy import dispatch
from kanta_guard.proxy.launch import install

Calls = list[str]


class Recorder:
    """An addon noting its hook calls; ``fail`` raises in ``request``, ``halt`` halts there."""

    def __init__(self, name: str, calls: Calls, *, fail: bool = False, halt: bool = False):
        self.name = name
        self.calls = calls
        self.fail = fail
        self.halt = halt

    def request(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.request")
        if self.fail:
            raise RuntimeError("boom")
        if self.halt:
            raise exceptions.AddonHalt

    async def response(self, flow: Any) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.name}.response")


class Parent(Recorder):
    """An addon with sub-addons (walked after it, as mitmproxy walks them)."""

    def __init__(self, name: str, calls: Calls, children: list[object], **kw: bool) -> None:
        super().__init__(name, calls, **kw)
        self.addons = children


@contextmanager
def _master(*, dump: bool = False, cached: bool = True) -> Iterator[Master]:
    """A real master (in the running loop), its log handler removed when done: else a later
    test's log records would go to this test's closed loop. Only the test's addons are in its
    chain; ``dump``: mitmdump's master, with mitmproxy's default addons."""
    opts = options.Options()
    master = DumpMaster(opts, with_termlog=False) if dump else Master(opts)
    if cached:
        dispatch.install(master)
    try:
        yield master
    finally:
        master._legacy_log_events.uninstall()


def _run(cached: bool, build: Callable[[Calls], list[object]], events: list[str]) -> Calls:
    """The calls ``events`` make on the addons ``build`` gives, in a real master."""

    async def go() -> Calls:
        calls: Calls = []
        with _master(cached=cached) as master:
            master.addons.add(*build(calls))
            flow = tflow.tflow(resp=True)
            for name in events:
                await master.addons.trigger_event(hooks.all_hooks[name](flow))
        return calls

    return asyncio.run(go())


def _same(build: Callable[[Calls], list[object]], events: list[str]) -> Calls:
    plain = _run(False, build, events)
    assert _run(True, build, events) == plain
    return plain


def test_the_same_calls_in_the_same_order() -> None:
    """Sub-addons after their parent, async hooks awaited, addons without the hook passed."""
    calls = _same(
        lambda c: [
            Recorder("a", c),
            object(),
            Parent("p", c, [Recorder("p1", c), Parent("p2", c, [Recorder("p21", c)])]),
            Recorder("b", c),
        ],
        ["request", "response", "request"],
    )
    assert calls[:5] == ["a.request", "p.request", "p1.request", "p2.request", "p21.request"]
    assert len(calls) == 18


def test_an_error_skips_the_rest_of_its_addon_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As mitmproxy's ``safecall``: logged as an addon error; the failing addon's sub-addons
    are skipped, the next addon of the chain runs."""
    with caplog.at_level(logging.ERROR):
        calls = _same(
            lambda c: [
                Parent("p", c, [Recorder("p1", c)], fail=True),
                Recorder("b", c),
            ],
            ["request"],
        )
    assert calls == ["p.request", "b.request"]
    errors = [r for r in caplog.records if r.getMessage() == "Addon error: boom"]
    assert len(errors) == 2  # (once under each manager)


def test_addon_halt_ends_the_event() -> None:
    calls = _same(
        lambda c: [Recorder("a", c, halt=True), Recorder("b", c)],
        ["request", "response"],
    )
    assert calls == ["a.request", "a.response", "b.response"]


def test_options_error_goes_up() -> None:
    class Refuses:
        def request(self, flow: Any) -> None:
            raise exceptions.OptionsError("refused")

    for cached in (False, True):
        with pytest.raises(exceptions.OptionsError):
            _run(cached, lambda c: [Refuses()], ["request"])


def test_the_table_follows_the_chain() -> None:
    """An addon added or removed after an event's table was built is (no longer) called."""

    async def go() -> Calls:
        with _master() as master:
            calls: Calls = []
            first = Recorder("a", calls)
            master.addons.add(first)
            flow = tflow.tflow()
            event = hooks.all_hooks["request"]
            await master.addons.trigger_event(event(flow))
            later = Recorder("b", calls)
            master.addons.add(later)
            await master.addons.trigger_event(event(flow))
            master.addons.remove(first)
            await master.addons.trigger_event(event(flow))
            master.addons.clear()
            await master.addons.trigger_event(event(flow))
        return calls

    assert asyncio.run(go()) == ["a.request", "a.request", "b.request", "b.request"]


def test_mitmdumps_own_addons_see_the_events() -> None:
    """In mitmdump's master (its 34 default addons) an event reaches the same hooks: an
    header rule set through the options (mitmproxy's modify_headers) applies under either
    manager."""

    async def go(cached: bool) -> str | None:
        with _master(dump=True, cached=cached) as master:
            master.options.update(modify_headers=["/~q/X-Dispatch/seen"])
            flow = tflow.tflow()
            await master.addons.trigger_event(hooks.all_hooks["requestheaders"](flow))
            return flow.request.headers.get("X-Dispatch")

    assert asyncio.run(go(False)) == "seen"
    assert asyncio.run(go(True)) == "seen"


def test_a_chain_changed_directly_is_followed() -> None:
    """An addon put into the chain's list directly (as the guard puts its redactor first),
    after the table was built, is called."""

    async def go() -> Calls:
        with _master() as master:
            calls: Calls = []
            master.addons.add(Recorder("a", calls))
            event = hooks.all_hooks["request"]
            await master.addons.trigger_event(event(tflow.tflow()))
            first = Recorder("first", calls)
            master.addons.chain.insert(0, first)
            await master.addons.trigger_event(event(tflow.tflow()))
        return calls

    assert asyncio.run(go()) == ["a.request", "first.request", "a.request"]


def test_sub_addons_that_change_in_place_are_walked_live() -> None:
    """An addon whose ``addons`` list changes without the manager being told (mitmproxy's
    script loader reorders its scripts so) is walked on every event, as mitmproxy walks it."""

    async def go() -> Calls:
        with _master() as master:
            calls: Calls = []
            parent = Parent("p", calls, [Recorder("x", calls)])
            master.addons.add(parent)
            event = hooks.all_hooks["request"]
            await master.addons.trigger_event(event(tflow.tflow()))
            parent.addons.insert(0, Recorder("y", calls))
            await master.addons.trigger_event(event(tflow.tflow()))
        return calls

    assert asyncio.run(go()) == ["p.request", "x.request", "p.request", "y.request", "x.request"]


def test_a_script_loaded_at_run_time_gets_its_hooks(tmp_path: Path) -> None:
    """A script set with ``scripts`` after the table was built (a real mitmproxy script
    loader) has its hook called; unset, it has not."""
    script = tmp_path / "noting.py"
    marker = tmp_path / "calls.txt"
    script.write_text(
        "def request(flow):\n"
        f"    with open({str(marker)!r}, 'a') as out:\n"
        "        out.write('script.request\\n')\n",
        "utf-8",
    )

    async def go() -> None:
        with _master(dump=True) as master:
            event = hooks.all_hooks["request"]
            await master.addons.trigger_event(event(tflow.tflow()))
            master.options.update(scripts=[str(script)])
            # (mitmproxy loads a script from a watcher task, which also reloads it on change.)
            loader = master.addons.get("scriptloader")
            for _ in range(200):
                if any(s.ns for s in loader.addons):
                    break
                await asyncio.sleep(0.025)
            await master.addons.trigger_event(event(tflow.tflow()))
            master.options.update(scripts=[])
            await master.addons.trigger_event(event(tflow.tflow()))

    asyncio.run(go())
    assert marker.read_text("utf-8") == "script.request\n"


def test_a_hook_that_is_not_callable_is_reported_as_mitmproxy_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        request = 3

    with caplog.at_level(logging.ERROR):
        calls = _same(lambda c: [Broken(), Recorder("b", c)], ["request"])
    assert calls == ["b.request"]
    assert sum("not callable" in r.getMessage() for r in caplog.records) == 2


def test_the_guard_installs_it(tmp_path: Path) -> None:
    """``kanta-guard run``/``web`` dispatch through it (``launch.install``)."""

    async def go() -> AddonManager:
        with _master(dump=True, cached=False) as master:
            settings = {"kanta_guard_log": str(tmp_path / "l.jsonl"), "kanta_guard_workers": 0}
            state = install(master, settings)
            state.log.close()  # type: ignore[union-attr]
        return master.addons

    assert isinstance(asyncio.run(go()), dispatch.CachedDispatch)


def test_a_hook_attribute_that_raises_is_handled_as_mitmproxy_handles_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An addon whose hook attribute raises when looked up: logged, and the other addons are
    still called (the table is not built; mitmproxy's own walk runs)."""

    class Raising:
        armed = False  # (mitmproxy reads every attribute while it registers an addon)

        @property
        def request(self) -> Any:
            if self.armed:
                raise RuntimeError("no hook here")
            return None

    async def go(cached: bool) -> Calls:
        calls: Calls = []
        with _master(cached=cached) as master:
            raising = Raising()
            master.addons.add(Recorder("a", calls), raising, Recorder("b", calls))
            raising.armed = True
            await master.addons.trigger_event(hooks.all_hooks["request"](tflow.tflow()))
        return calls

    with caplog.at_level(logging.ERROR):
        for cached in (False, True):
            assert asyncio.run(go(cached)) == ["a.request", "b.request"]
    assert sum("no hook here" in r.getMessage() for r in caplog.records) == 2

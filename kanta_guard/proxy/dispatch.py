"""mitmproxy's event dispatch with each event's hooks looked up once, not on every event.

Why: mitmproxy hands every event (request headers, a request, the ``update`` after each of them,
a connection opened …) to every addon of its chain: per addon and event, one ``safecall``
context manager, one coroutine, one walk of the addon's sub-addons and one attribute look-up,
whether the addon has the hook or not. Its 34 default addons cost about 50 µs an event this way
on this machine (``.venv/bin/python bench/dispatch.py``), some 400 µs of the proxy thread per
proxied request: a third of what plain mitmdump spends on one. In front of Kanta that thread
also runs the guard, so what the dispatch wastes the guard loses in throughput.

:class:`CachedDispatch` is mitmproxy's ``AddonManager`` with ``trigger_event`` reading a table
built on an event's first use: for each addon of the chain, in order, the callables its
sub-addon walk yields for the event, exactly as mitmproxy's ``_iter_hooks`` finds them. The
calls are the same, in the same order, with the same arguments; an error is logged as
``safecall`` logs it and skips the rest of that addon's sub-addons, ``AddonHalt`` ends the
event, ``OptionsError`` goes up. The table is dropped whenever the chain can change (``add``,
``register``, ``remove``, ``clear``; a chain list that is another one, or of another length).
An addon whose sub-addons can change without any of these (mitmproxy's script loader, which
reorders its scripts in place) is walked live on every event, as mitmproxy walks it.

Only ``kanta-guard run``/``web`` install it (:func:`install`); ``mitmdump -s`` keeps mitmproxy's
own manager.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from mitmproxy import addonmanager, exceptions, hooks

__all__ = ["CachedDispatch", "install"]

#: One chain entry's hooks for an event: the callables, or None to walk the entry live.
_Entry = tuple[object, tuple[Callable[..., Any], ...] | None]


class CachedDispatch(addonmanager.AddonManager):
    """mitmproxy's addon manager, each event's table of hooks built once (module docstring)."""

    _tables: dict[str, tuple[_Entry, ...]]
    #: The chain the tables were built from (its list and length): a change made to the list
    #: directly (``chain.insert``, as the guard puts its redactor first) rebuilds them too.
    _shape: tuple[int, int]

    def _invalidate(self) -> None:
        self._tables = {}
        self._shape = (id(self.chain), len(self.chain))

    def clear(self) -> None:
        self._invalidate()
        super().clear()
        self._invalidate()

    def register(self, addon: Any) -> Any:
        self._invalidate()
        try:
            return super().register(addon)
        finally:
            self._invalidate()

    def add(self, *addons: Any) -> None:
        self._invalidate()
        try:
            super().add(*addons)
        finally:
            self._invalidate()

    def remove(self, addon: Any) -> None:
        self._invalidate()
        try:
            super().remove(addon)
        finally:
            self._invalidate()

    def _table(self, event: hooks.Hook) -> tuple[_Entry, ...]:
        table = self._tables.get(event.name)
        if table is None:
            table = tuple(self._entries(event))
            self._tables[event.name] = table
        return table

    def _entries(self, event: hooks.Hook) -> Iterator[_Entry]:
        for addon in self.chain:
            if _dynamic(addon):
                yield addon, None
                continue
            funcs = tuple(func for _, func in self._iter_hooks(addon, event))
            if funcs:
                yield addon, funcs

    async def trigger_event(self, event: hooks.Hook) -> None:
        """Trigger ``event`` across all addons, as mitmproxy's ``trigger_event`` does."""
        if not hasattr(self, "_tables") or self._shape != (id(self.chain), len(self.chain)):
            self._invalidate()
        try:
            table = self._table(event)
        except Exception:
            # A hook that is not callable, an attribute that raises when looked up: mitmproxy's
            # own walk reports it, addon by addon, and calls the others (nothing is cached).
            await super().trigger_event(event)
            return
        args = event.args()
        for addon, funcs in table:
            try:
                if funcs is None:
                    with addonmanager.safecall():
                        await self.invoke_addon(addon, event)
                    continue
                for func in funcs:
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
            except exceptions.AddonHalt:
                return
            except exceptions.OptionsError:
                raise
            except Exception as exc:
                _log(exc)


def _log(exc: Exception) -> None:
    """Log ``exc`` exactly as mitmproxy's ``safecall`` does (its message, its cut traceback)."""
    with addonmanager.safecall():
        raise exc


def _dynamic(addon: object) -> bool:
    """True if the addon's sub-addons may change without the manager being told: any addon
    that has them (the script loader reassigns and reorders its list; a script's ``addons`` is
    a property). The guard's chain drops its own once registered (``chain``)."""
    return hasattr(addon, "addons")


def install(master: Any) -> None:
    """Make ``master``'s addon manager a :class:`CachedDispatch` (before any addon is added, or
    after: its table is built on first use)."""
    manager = master.addons
    if not isinstance(manager, CachedDispatch):
        manager.__class__ = CachedDispatch
    manager._invalidate()

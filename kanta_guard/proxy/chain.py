"""The guard's addons as one entry of mitmproxy's chain, each hook handed to those that have it.

Why: mitmproxy dispatches every event (a connection opened, a TLS hello, request headers, a
request, ``update`` after each of them …) to every addon in its chain, one context manager, one
coroutine and one attribute walk per addon and event, whether the addon has the hook or not.
With the guard's addons each in the chain, that walk was the largest cost the guard added to a
request it did not scan itself (py-spy on ``kanta-guard run`` under ``bench/benchmark.py``: the
addon manager's dispatch 24 % of the proxy thread, against its share under plain mitmdump).
Here each behaviour stays an addon of its own (its module, its hooks, its options and commands);
only the dispatch is done once: mitmproxy sees one addon, which has exactly the hooks its
members have, and calls each member's hook in chain order.

The members are registered with mitmproxy as this addon's sub-addons (``addons``), so their
``load`` hooks declare their options, their commands are collected and ``master.addons.get``
finds each by name; then :meth:`GuardChain.registered` hides them from mitmproxy's walk, which
would otherwise call them a second time.

Errors are logged as mitmproxy's own dispatch logs them (``addonmanager.safecall``), and the
next member still runs; ``AddonHalt`` and ``OptionsError`` (a refused option, which must stop
start-up) pass through. Unlike mitmproxy, which would go on with the flow, a member's error in
a hook of a flow's traffic (its request, a message, the response that may switch protocols)
kills that flow: what the guard failed on is not forwarded (fail closed; the HTTP guard catches
its own errors and answers them as blocks, this is for the other members and what escapes).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

# Imported for their hook classes: ``hooks.all_hooks`` is filled as they are defined (the
# addon manager's, the server's and every layer's), and must be whole when a chain is built.
import mitmproxy.addonmanager
import mitmproxy.proxy.layers
import mitmproxy.proxy.server_hooks  # noqa: F401
from mitmproxy import exceptions, hooks

__all__ = ["GuardChain"]

logger = logging.getLogger("kanta_guard")

#: Hooks mitmproxy calls during registration itself, through the sub-addons (``addons``).
_AT_REGISTRATION = frozenset(("load",))
#: Hooks on a flow's traffic: a member's error in one kills the flow (see the module docstring).
_TRAFFIC = frozenset(
    (
        "requestheaders",
        "request",
        "responseheaders",
        "response",
        "http_connect",
        "http_connect_upstream",
        "tcp_start",
        "tcp_message",
        "udp_start",
        "udp_message",
        "websocket_start",
        "websocket_message",
        "dns_request",
    )
)


class GuardChain:
    """One addon standing for ``members`` in mitmproxy's chain, in their order."""

    name = "kanta_guard_chain"

    def __init__(self, members: Sequence[object]) -> None:
        #: Walked by mitmproxy while it registers this addon; removed by :meth:`registered`.
        self.addons: list[object] = list(members)
        self.members = tuple(members)
        for hook in sorted(hooks.all_hooks):
            if hook in _AT_REGISTRATION:
                continue
            funcs = [
                func
                for member in self.members
                if callable(func := getattr(member, hook, None)) and not inspect.ismodule(func)
            ]
            if funcs:
                setattr(self, hook, _dispatcher(hook, funcs))

    def registered(self) -> None:
        """The members are registered: from now on this addon alone hands them their hooks."""
        del self.addons


def _dispatcher(hook: str, funcs: list[Callable[..., Any]]) -> Callable[..., Any]:
    """A hook that calls ``funcs`` in order, each one's error logged as mitmproxy would."""
    if any(inspect.iscoroutinefunction(func) for func in funcs):

        async def dispatch_async(*args: Any) -> None:
            for func in funcs:
                try:
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
                except (exceptions.AddonHalt, exceptions.OptionsError):
                    raise
                except Exception as exc:
                    _failed(hook, func, exc, args)

        dispatch_async.__name__ = hook
        return dispatch_async

    def dispatch(*args: Any) -> None:
        for func in funcs:
            try:
                result = func(*args)
                if result is not None and inspect.isawaitable(result):
                    # (A plain function returning a coroutine: called from a sync context by
                    # mitmproxy too, it could not be awaited there either.)
                    raise TypeError(f"{hook} returned an awaitable from a plain function")
            except (exceptions.AddonHalt, exceptions.OptionsError):
                raise
            except Exception as exc:
                _failed(hook, func, exc, args)

    dispatch.__name__ = hook
    return dispatch


def _failed(hook: str, func: Callable[..., Any], exc: Exception, args: tuple[Any, ...]) -> None:
    """Log a member's error; on a flow's traffic, kill the flow (nothing it carries goes on)."""
    owner = getattr(func, "__self__", func)
    flow = args[0] if args else None
    killed = hook in _TRAFFIC and getattr(flow, "killable", False)
    logger.error(
        "Addon error: %s (kanta-guard %s in %s%s)",
        exc,
        hook,
        type(owner).__name__,
        "; the flow is killed" if killed else "",
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    if killed and flow is not None:
        flow.kill()

"""Starting mitmproxy with the guard: every addon in the place its behaviour needs.

``kanta-guard run``/``web`` do not load the guard as a script (``-s``): scripts run in the middle
of mitmproxy's addon chain, before ``modify_body``, ``map_remote`` and the rest, which would then
change requests after the guard judged them. Here the master is built first and the guard's
addons are placed around mitmproxy's own:

- :class:`~kanta_guard.proxy.redact.Redactor` first, so that mitmproxy's dumper, its flow file and
  mitmweb see flagged requests redacted;
- :class:`~kanta_guard.proxy.connections.ConnectionGuard`,
  :class:`~kanta_guard.proxy.dimse.DimseGuard` (DIMSE to the configured DICOM upstreams),
  :class:`~kanta_guard.proxy.status.Status` and :class:`~kanta_guard.proxy.guard.HttpGuard` last,
  so that the guard judges each request (and each connection's layer, and each DICOM data set)
  after every other addon has had its say;
- just before them, after mitmproxy's own addons (``map_remote`` may change where a request
  goes), the checks of where traffic goes and with which certificates:
  :class:`~kanta_guard.proxy.trust.TrustAnchors` (the policy's trust anchors, one shared
  judge), :class:`~kanta_guard.proxy.upstream.UpstreamGuard` (allowed upstream hosts),
  :class:`~kanta_guard.proxy.servercert.ServerCertGuard` (the upstream's certificate),
  :class:`~kanta_guard.proxy.clientcerts.OwnClientCert` (``client_certs``) and
  :class:`~kanta_guard.proxy.clientcerts.PresentedClientCert` (``request_client_cert``). They
  answer what they refuse, so the HTTP guard (which skips answered flows) never forwards it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .clientcerts import OwnClientCert, PresentedClientCert
from .connections import ConnectionGuard
from .dimse import DimseGuard
from .guard import HttpGuard
from .redact import Redactor
from .servercert import ServerCertGuard
from .state import GuardState
from .status import Status
from .trust import TrustAnchors
from .upstream import UpstreamGuard

__all__ = ["SHUTDOWN_GRACE", "addons", "install", "run_tool"]

logger = logging.getLogger("kanta_guard")

#: Seconds the process may take to stop after the guard's ``done`` hook before it is ended.
SHUTDOWN_GRACE = 5.0


def addons(state: GuardState, settings: Mapping[str, Any] | None = None) -> list[object]:
    """The guard's addons in chain order (the script ``addons/kanta_guard.py`` loads these)."""
    trust = TrustAnchors(state)
    return [
        Redactor(state),
        trust,
        UpstreamGuard(state),
        ServerCertGuard(state, trust),
        OwnClientCert(state, trust),
        PresentedClientCert(state, trust),
        ConnectionGuard(state),
        DimseGuard(state, settings),
        Status(state),
        HttpGuard(state, settings),
    ]


def install(master: Any, settings: Mapping[str, Any]) -> GuardState:
    """Add the guard to a master: the redactor at the front of the chain, the rest at its end."""
    state = GuardState()
    redactor, *rest = addons(state, settings)
    master.addons.register(redactor)
    master.addons.chain.insert(0, redactor)
    master.addons.add(*rest)
    return state


def run_tool(tool: str, args: Sequence[str], settings: Mapping[str, Any]) -> int:
    """Run mitmdump or mitmweb in this process, with the guard installed; its exit status."""
    from mitmproxy.tools import cmdline, main

    from . import quiet

    quiet.install()
    if tool == "mitmweb":
        from mitmproxy.tools.web.master import WebMaster

        base: Callable[[Any], Any] = WebMaster
        parser = cmdline.mitmweb
        extra = None
    else:
        from mitmproxy.tools.dump import DumpMaster

        base, parser, extra = DumpMaster, cmdline.mitmdump, _dump_extra

    def make(opts: Any) -> Any:
        master = base(opts)
        install(master, settings)
        _stop_within(master)
        return master

    try:
        main.run(make, parser, list(args), extra)  # type: ignore[arg-type]
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _dump_extra(args: Any) -> dict[str, Any]:
    """mitmdump's own filter arguments (as ``mitmproxy.tools.main.mitmdump`` sets them)."""
    if args.filter_args:
        text = " ".join(args.filter_args)
        return {"save_stream_filter": text, "readfile_filter": text, "dumper_filter": text}
    return {}


def _stop_within(master: Any) -> None:
    """After shutdown starts, end the process if it has not ended within SHUTDOWN_GRACE.

    mitmproxy stops by cancelling its tasks; a connection or a scan that does not give up at
    once can keep the process up long after SIGTERM, and a service manager would then wait on
    it. The guard's workers are already stopped by then (its ``done`` hook).
    """
    original = master.shutdown

    def shutdown() -> None:
        timer = threading.Timer(SHUTDOWN_GRACE, _force_exit)
        timer.daemon = True
        timer.start()
        original()

    master.shutdown = shutdown


def _force_exit() -> None:
    logger.error(
        "kanta-guard: did not stop within %s s of shutdown; ending the process", SHUTDOWN_GRACE
    )
    os._exit(0)

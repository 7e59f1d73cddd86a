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
  answer what they refuse, so the HTTP guard (which skips answered flows) never forwards it;
- :class:`~kanta_guard.proxy.upstreamerror.UpstreamErrors` with them (it has no request hook,
  so it acts only after the HTTP guard let a request pass): a request whose upstream is down or
  untrusted is answered in the client's protocol, not with mitmproxy's HTML page.

Everything after the redactor stands in mitmproxy's chain as one
:class:`~kanta_guard.proxy.chain.GuardChain`, which hands each hook to those of them that have
it, in the order above (one dispatch per event instead of one per addon).

Before mitmproxy brings up its servers, an option name no addon declared (``--set
client_cert=…``) stops the start with exit 2, and the start prints where the log, the CA and the
policy are (:func:`startup_lines`). The CA itself is the guard's own (:func:`ensure_ca`).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from ..idcode import mask_text
from ..paths import APP, CA_BASENAME, ca_cert
from . import dispatch
from .chain import GuardChain
from .clientcerts import OwnClientCert, PresentedClientCert
from .connections import ConnectionGuard
from .dimse import DimseGuard
from .guard import HttpGuard
from .metrics import Metrics
from .redact import Redactor
from .servercert import ServerCertGuard
from .state import GuardState
from .status import Status
from .trust import TrustAnchors
from .upstream import UpstreamGuard
from .upstreamerror import UpstreamErrors

__all__ = [
    "SHUTDOWN_GRACE",
    "WEB_COLUMN",
    "addons",
    "ensure_ca",
    "install",
    "run_tool",
    "startup_lines",
    "unknown_options",
]

logger = logging.getLogger("kanta_guard")

#: Seconds the process may take to stop after the guard's ``done`` hook before it is ended.
SHUTDOWN_GRACE = 5.0
#: The mitmweb column the guard adds to mitmweb's default ones: flow comments, where the guard
#: says why it flagged a request, or what it recognised in a clean one.
WEB_COLUMN = "comment"
#: Exit status of a start refused for its options (the command line's usage error).
EXIT_USAGE = 2


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
        UpstreamErrors(),  # (no request hook: it answers only what the guard let pass)
        ConnectionGuard(state),
        DimseGuard(state, settings),
        Metrics(state),  # (before Status: kanta-guard.status/metrics is the metrics addon's)
        Status(state),
        HttpGuard(state, settings),
    ]


def install(master: Any, settings: Mapping[str, Any]) -> GuardState:
    """Add the guard to a master: the redactor at the front of the chain, the rest at its end."""
    state = GuardState()
    # Each event's hooks looked up once, not per addon and event (see ``dispatch``).
    dispatch.install(master)
    redactor, *rest = addons(state, settings)
    master.addons.register(redactor)
    master.addons.chain.insert(0, redactor)
    # The rest as one entry of the chain: mitmproxy's per-addon dispatch of every event was
    # the largest cost the guard added to a request (see ``chain``).
    rest_chain = GuardChain(rest)
    master.addons.add(rest_chain)
    rest_chain.registered()
    return state


def run_tool(tool: str, args: Sequence[str], settings: Mapping[str, Any]) -> int:
    """Run mitmdump or mitmweb in this process, with the guard installed; its exit status."""
    from mitmproxy.tools import cmdline, main

    from . import quiet

    quiet.install()
    if tool == "mitmweb":
        base: Callable[[Any], Any] = _web_master
        parser = cmdline.mitmweb
        extra = None
    else:
        from mitmproxy.tools.dump import DumpMaster

        base, parser, extra = DumpMaster, cmdline.mitmdump, _dump_extra

    def make(opts: Any) -> Any:
        master = base(opts)
        state = install(master, settings)
        _stop_within(master)
        _checked_start(master, state, tool)
        return master

    try:
        main.run(make, parser, list(args), extra)  # type: ignore[arg-type]
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def _web_master(opts: Any) -> Any:
    """mitmweb's master, its flow list showing the Comment column (:data:`WEB_COLUMN`).

    ``web_columns`` is a server option: the dashboard reads it from ``/options`` at every load
    (only column widths are kept in the browser's localStorage), and a column toggled there
    lasts until the proxy stops. Set here, before mitmproxy applies ``config.yaml`` and the
    command line, so that a user's own ``--set web_columns=…`` wins.
    """
    from mitmproxy.tools.web.master import WebMaster

    master = WebMaster(opts)
    columns = list(opts.default("web_columns"))
    if WEB_COLUMN not in columns:
        opts.update(web_columns=[*columns, WEB_COLUMN])
    return master


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


def ensure_ca(confdir: Path, key_size: int = 2048) -> bool:
    """Create the guard's own CA in ``confdir`` unless one is there; True when created.

    mitmproxy would create one named "mitmproxy" on first start; made here first, under the
    basename mitmproxy loads, it is named for kanta-guard (organisation and CN), so that a
    trust store or a certificate viewer says whose it is. Raises OSError when ``confdir``
    cannot be made or written.
    """
    from mitmproxy.certs import CertStore

    if (confdir / f"{CA_BASENAME}-ca.pem").exists():
        return False
    CertStore.create_store(confdir, CA_BASENAME, key_size, organization=APP, cn=APP)
    return True


def unknown_options(deferred: Iterable[str], known: Iterable[str]) -> str | None:
    """The error line for option names no addon declared (``--set client_cert=…``), or None.

    mitmproxy keeps such options aside in case a script declares them later, and then never
    says a word: a typo in an option that was meant to secure the connection would go unseen.
    """
    names = sorted(deferred)
    if not names:
        return None
    choices = sorted(known)
    parts = []
    for name in names:
        close = difflib.get_close_matches(name, choices, n=1)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    plural = "s" if len(names) > 1 else ""
    return mask_text(
        f"kanta-guard: error: unknown option{plural}: {', '.join(parts)}; "
        "`kanta-guard run --options` lists every option"
    )


def startup_lines(
    *, tool: str, policy: str | None, log: Path, ca_cert: Path, workers: int
) -> list[str]:
    """What start-up prints on stderr: where the log, the CA and the policy are, and the scan
    workers (absolute paths, masked like everything the guard prints)."""
    shown_workers = f"{workers}" if workers else "0 (scans on the proxy's thread)"
    lines = [
        f"kanta-guard {_version()} ({tool})",
        f"  policy:       {policy if policy else 'embedded default policy'}",
        f"  log:          {log}",
        f"  CA:           {ca_cert} (clients must trust it: README, Trusting the guard's CA)",
        f"  scan workers: {shown_workers}",
    ]
    return [mask_text(line) for line in lines]


def _version() -> str:
    try:
        return metadata.version(APP)
    except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "(not installed)"


#: How many times the start waits one event-loop turn for ``-s`` scripts to load: a script is
#: loaded by a task mitmproxy starts when its option is set (one turn to start, one to load).
_SCRIPT_TURNS = 10


def _checked_start(master: Any, state: GuardState, tool: str) -> None:
    """Before mitmproxy brings up its servers: refuse option names nobody declared (exit 2),
    then print where the log, the CA and the policy are."""
    original = master.run

    async def run() -> None:
        options = master.options
        if options.deferred and options.scripts:
            for _ in range(_SCRIPT_TURNS):  # their options are declared once they load
                await asyncio.sleep(0)
        error = unknown_options(options.deferred, options.keys())
        if error:
            print(error, file=sys.stderr)
            raise SystemExit(EXIT_USAGE)
        policy = state.policy
        confdir = Path(options.confdir).expanduser().absolute()
        if state.log is not None:
            log = state.log.path
        else:  # (not configured yet: the guard refuses traffic until it is, and says why)
            log = Path(options.kanta_guard_log or (policy.log.path if policy else ""))
        log = log.absolute()
        source = policy.source if policy is not None else options.kanta_guard_policy
        lines = startup_lines(
            tool=tool,
            policy=None if source in ("", "<embedded default>") else source,
            log=log,
            ca_cert=ca_cert(confdir),
            workers=int(options.kanta_guard_workers),
        )
        print("\n".join(lines), file=sys.stderr, flush=True)
        await original()

    master.run = run

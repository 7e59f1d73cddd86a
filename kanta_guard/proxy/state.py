"""What the guard's addons share: the active policy, its scanner and log, and the guard's health.

One :class:`GuardState` per proxy process. The HTTP guard configures it; every addon asks it
whether the guard is ready before it lets anything through. Pure: no mitmproxy here, so the
health rules (when the guard refuses traffic, when it recovers) are tested without a proxy.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..eventlog import EventLog, LogRotationError, make_event
from ..idcode import mask_text
from ..pipeline import Scanner
from ..policy import Policy
from ..registry import Registry
from ..stats import Stats
from ..worker import WorkerPool

__all__ = ["GuardState"]

logger = logging.getLogger("kanta_guard")


@dataclass
class GuardState:
    """The guard's configuration and health, shared by its addons.

    ``ready`` is the one question every hook asks: a guard without a valid policy, or whose log
    cannot be written while the policy requires one, forwards nothing.
    """

    policy: Policy | None = None
    scanner: Scanner | None = None
    log: EventLog | None = None
    workers: WorkerPool | None = None
    #: The registry of test identities in force (the last good version), None without one.
    registry: Registry | None = None
    #: (mtime_ns, size) of the registry file when it was last read, good or not.
    registry_stamp: tuple[int, int] | None = None
    #: Why the guard is not configured (a start-up failure), shown in every refusal.
    config_error: str | None = "kanta-guard has not been configured yet"
    #: The last failure to write the log (masked), or None while it writes.
    log_error: str | None = None
    #: The last failure to rotate the log (the record was still written), or None.
    rotation_error: str | None = None
    #: True while the proxy starts (see :meth:`_report`).
    starting: bool = False
    #: Counters since start (the status page and the metrics read them).
    stats: Stats = field(default_factory=Stats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def ready(self) -> bool:
        """True when the guard may let traffic through (it still judges each request)."""
        if self.policy is None or self.scanner is None or self.log is None:
            return False
        return self.log_error is None or not self.policy.log.required

    def why_not_ready(self) -> str:
        """One sentence for a refusal: why nothing passes right now."""
        if self.policy is None or self.scanner is None or self.log is None:
            return self.config_error or "kanta-guard holds no valid policy"
        return (
            f"the blocked-request log cannot be written ({self.log_error}); the policy requires "
            "a record of what is stopped, so nothing passes until it can be written again"
        )

    def write(self, record: Mapping[str, object]) -> bool:
        """Append ``record`` to the log; False (and the failure reported) if it was not written.

        A failed rotation still writes the record (see :class:`EventLog`): that is reported but
        is no write failure. Any other error marks the log as failing until a write succeeds.
        """
        if "event" not in record:
            # Counted whether or not it can be written: the request was judged either way.
            self.stats.recorded(record)
        if self.log is None:
            return False
        try:
            self.log.write(record)
        except LogRotationError as exc:
            self._rotation_failed(exc)
            return True
        except (OSError, ValueError) as exc:
            self._write_failed(exc)
            return False
        if self.log_error is not None:
            self._recovered()
        return True

    def probe(self) -> bool:
        """While the log is failing, try to write again (a ``log-recovered`` event); True if it
        could be written. Called before judging a request, so the guard recovers by itself."""
        if self.log_error is None:
            return True
        if self.log is None:
            return False
        try:
            self.log.write(make_event("log-recovered", after=self.log_error))
        except LogRotationError as exc:
            self._rotation_failed(exc)
        except (OSError, ValueError) as exc:
            self._write_failed(exc)
            return False
        self._recovered()
        return True

    def status(self) -> dict[str, object]:
        """The guard's status as plain data (the status page, ``kanta_guard.status``)."""
        policy = self.policy
        stats = self.stats.snapshot()
        return {
            "ready": self.ready,
            "reason": None if self.ready else self.why_not_ready(),
            "policy": None
            if policy is None
            else {
                "source": mask_text(policy.source),
                "digest": policy.digest,
                "rules": {rule: str(action) for rule, action in policy.actions.items()},
                "allow_weakening": policy.runtime.allow_weakening,
            },
            "log": None
            if self.log is None
            else {
                "path": mask_text(str(self.log.path)),
                "writable": self.log_error is None,
                "error": self.log_error,
                "rotation_error": self.rotation_error,
                "required": policy.log.required if policy is not None else True,
            },
            "workers": 0 if self.workers is None else self.workers.size,
            "worker_health": self._worker_health(stats.worker_restarts),
            "registry": None
            if self.registry is None
            else {
                "path": mask_text(str(self.registry.path or "")),
                "identities": len(self.registry),
                "digest": self.registry.digest,
                "bytes": None if self.registry_stamp is None else self.registry_stamp[1],
            },
            "testing": None if policy is None else str(policy.testing),
            "stats": stats.as_dict(),
        }

    def _worker_health(self, restarts: int) -> dict[str, object]:
        """How many scan workers are configured and running (they start with the proxy; one
        that failed is replaced when next needed), and how many have been replaced."""
        workers = self.workers
        configured = 0 if workers is None else workers.size
        running = 0 if workers is None else len(workers.pids)
        return {
            "configured": configured,
            "running": running,
            "restarts": restarts,
            "scanning_in_proxy": workers is None,
        }

    # -- health ---------------------------------------------------------------------------------

    def _write_failed(self, exc: BaseException) -> None:
        self.stats.log_failed()
        reason = _reason(exc)
        with self._lock:
            first = self.log_error is None
            self.log_error = reason
        if first:
            required = self.policy is None or self.policy.log.required
            then = (
                "refusing all traffic until it can be written again"
                if required
                else "going on blocking without a record (log.required = false)"
            )
            self._report(
                f"kanta-guard: the blocked-request log {self._path()} cannot be written "
                f"({reason}); {then}"
            )

    def _rotation_failed(self, exc: BaseException) -> None:
        reason = _reason(exc)
        with self._lock:
            first = self.rotation_error != reason
            self.rotation_error = reason
        if first:
            self._report(
                f"kanta-guard: rotating the blocked-request log {self._path()} failed ({reason}); "
                "records still go into the current file, which now grows past log.max_bytes"
            )

    def _path(self) -> str:
        return mask_text(str(self.log.path)) if self.log is not None else "(none)"

    def _report(self, message: str) -> None:
        """On stderr (mitmdump prints its own log to stdout) and in mitmproxy's event log.

        While the proxy starts, mitmproxy ends the process on any error logged; a log that
        cannot be written is no reason to stop (the guard refuses traffic instead), so it is a
        warning there.
        """
        print(message, file=sys.stderr, flush=True)
        logger.log(logging.WARNING if self.starting else logging.ERROR, "%s", message)

    def _recovered(self) -> None:
        with self._lock:
            was, self.log_error = self.log_error, None
        if was is not None:
            logger.warning("kanta-guard: the blocked-request log can be written again")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return mask_text(exc.strerror)
    return mask_text(type(exc).__name__)

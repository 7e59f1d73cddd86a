"""Trust anchors: the policy's ``[certificates] anchors`` loaded at start-up, one shared judge.

Every certificate the proxy side judges (the upstream server's chain, the client certificate the
proxy presents, the one the system under test presents) is judged by one
:class:`~kanta_guard.certs.CertJudge`, built from the active policy's trust anchors folder
(:func:`~kanta_guard.certs.load_anchors`) or, without one, from the default rules. The judge
keeps its cache of verdicts for as long as the anchors stay the same.

Fail fast: a folder that cannot be read (missing, empty, a file that holds no CA certificate)
stops start-up with the folder or file and the problem, and a policy changed at run time whose
anchors cannot be loaded is refused before the HTTP guard takes it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from mitmproxy import ctx, exceptions

from ..certs import CertJudge, load_anchors
from ..errors import PolicyError
from ..idcode import mask_text
from ..policy import Policy, load_policy
from .state import GuardState

__all__ = ["TrustAnchors", "configured_policy"]

logger = logging.getLogger("kanta_guard")

_NONE = object()


def configured_policy(state: GuardState, updated: set[str]) -> Policy | None:
    """The policy a ``configure`` round is about: the option's new file when
    ``kanta_guard_policy`` changes in it (the HTTP guard, last in the chain, has not taken it
    yet), else the active one. None before the HTTP guard holds a policy (while addons load,
    each option they add is a configure round of its own: the check waits for ``running``) and
    for a policy file that cannot be read (the HTTP guard reports that)."""
    if state.policy is None:
        return None
    if "kanta_guard_policy" not in updated:
        return state.policy
    try:
        return load_policy(getattr(ctx.options, "kanta_guard_policy", ""))
    except PolicyError:
        return None


class TrustAnchors:
    """Loads the trust anchors of the policy and holds the one certificate judge."""

    def __init__(self, state: GuardState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._folder: object = _NONE
        self._judge: CertJudge | None = None
        self._checked = False
        #: Why the anchors could not be loaded at start-up (the process is ending), or None.
        self.failed: str | None = None

    def judge(self, policy: Policy | None = None) -> CertJudge:
        """The judge for ``policy`` (default: the active one); built when its anchors folder
        differs from the last one. Raises PolicyError when the folder cannot be loaded."""
        policy = policy if policy is not None else self.state.policy
        folder: Path | None = policy.certificates.anchors if policy is not None else None
        with self._lock:
            if self._judge is not None and self._folder == folder:
                return self._judge
        judge = CertJudge(load_anchors(folder) if folder is not None else None)
        with self._lock:
            self._folder, self._judge = folder, judge
        return judge

    def configure(self, updated: set[str]) -> None:
        if self._checked and "kanta_guard_policy" not in updated:
            return
        policy = configured_policy(self.state, updated)
        if policy is None:
            return
        try:
            self.judge(policy)
        except PolicyError as exc:
            raise exceptions.OptionsError(_message(exc)) from exc
        self._checked = True

    def running(self) -> None:
        if self._checked or self.state.policy is None:
            return
        try:
            self.judge()
        except PolicyError as exc:
            # An error logged while the proxy starts ends it (mitmproxy's errorcheck).
            self.failed = _message(exc)
            logger.error("%s", self.failed)
        self._checked = True


def _message(exc: BaseException) -> str:
    return mask_text(
        f"kanta-guard: {exc}. The trust anchors folder ([certificates] anchors) holds the "
        "DVV/VRK test CA certificates (PEM or DER) the guard verifies certificates against."
    )

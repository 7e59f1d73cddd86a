"""One association as the guard relays it: what passes now, what waits for a verdict, what is
answered instead.

:class:`Relay` is pure: bytes from the client or the server go in (:meth:`Relay.from_client`,
:meth:`Relay.from_server`), an :class:`Output` comes out saying which bytes go on to each side,
which data sets must be judged, and what was refused. The verdict goes back in with
:meth:`Relay.decide`. The proxy addon only moves bytes and asks the scanner.

What the relay guarantees:

- the server receives a data set only after its verdict let it pass, together with the command
  announcing it: a C-STORE-RQ whose data set is blocked never reaches the server at all (its
  command set is held with it), so the server sees no operation it must be told to forget;
- the bytes a side receives are whole PDUs in the order the other side sent them (a PDU holding
  the end of one message and the start of the next is split in two at the message boundary,
  with the same presentation data values); nothing after a held message overtakes it;
- a blocked request is answered to the client with its response (the failure status and an
  Error Comment naming the rules, :mod:`~kanta_guard.dimse.commands`) at a message boundary of
  the server's stream; what cannot be answered (a blocked response, a protocol violation, an
  over-long PDU) aborts the association both ways (A-ABORT to each side, nothing more relayed);
- memory per association is bounded: one PDU in assembly per side (``Limits.max_pdu``), data
  sets of at most ``Limits.max_data_set`` bytes (a larger one is not held: its fragments are
  dropped as they come and the request is answered "out of resources"; the guard does not spool
  to disk, because the scanner reads a data set from memory and refuses larger ones anyway), and
  at most ``Limits.max_held`` bytes held in all (more aborts);
- the Maximum Length Received each side announces is lowered to ``Limits.max_pdu`` when it is 0
  (unlimited) or larger, so that a conforming peer never sends a PDU the guard must refuse.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from .commands import Command, decode, error_comment, failure_response, response_status
from .pdu import (
    DEFAULT_MAX_PDU,
    HEADER,
    Abort,
    AbortReason,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PData,
    PduReader,
    PduType,
    Pdv,
    ProtocolError,
    ReleaseRP,
    ReleaseRQ,
    parse,
    patch_max_length,
    split_pdvs,
)

__all__ = ["DataSet", "Limits", "Output", "Phase", "Refusal", "Relay"]

#: PDV header inside a P-DATA-TF's variable field: item length (4), context id, control (2).
_PDV_HEAD = 6


@dataclass(frozen=True, slots=True)
class Limits:
    """What one association may make the guard hold."""

    #: Longest PDU, header included (and the Maximum Length each side is told).
    max_pdu: int = DEFAULT_MAX_PDU
    #: Largest data set held for a verdict; a larger one is refused unread.
    max_data_set: int = 32 * 2**20
    #: Largest command set.
    max_command: int = 64 * 2**10
    #: Bytes held in all (data sets waiting for verdicts, what queues behind them); None:
    #: two data sets and two PDUs.
    max_held: int | None = None

    @property
    def held(self) -> int:
        return (
            self.max_held
            if self.max_held is not None
            else 2 * (self.max_data_set + self.max_pdu + self.max_command)
        )


class Phase(Enum):
    """Where the association stands (PS3.8 §9.2, as far as the guard needs to know)."""

    IDLE = "idle"  # nothing yet: the client's A-ASSOCIATE-RQ is due
    REQUESTED = "requested"  # the RQ went on: the server's AC or RJ is due
    ESTABLISHED = "established"
    RELEASING = "releasing"  # the client asked for release
    CLOSED = "closed"  # rejected, released or aborted: nothing more is relayed


@dataclass(frozen=True, slots=True)
class DataSet:
    """A complete data set, held until its verdict (:meth:`Relay.decide` with its ticket)."""

    ticket: int
    #: The data set's bytes: kept out of the repr (it holds what the scan is about).
    data: bytes = field(repr=False)
    command: Command
    context_id: int
    abstract_syntax: str
    transfer_syntax: str

    @property
    def content_type(self) -> str:
        """How the scanner is told what it reads (a bare data set, no file meta)."""
        return f"application/dicom; transfer-syntax={self.transfer_syntax}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Something the relay refused without a verdict (the addon logs it).

    ``kind``: ``too-large`` (a data set over the limit, answered), ``aborted`` (the association,
    both ways), ``rejected`` (the association, before it reached the server).
    """

    kind: str
    reason: str
    command: Command | None = None


@dataclass(slots=True)
class Output:
    """What one step of the relay produced, each list in order."""

    to_server: list[bytes] = field(default_factory=list)
    to_client: list[bytes] = field(default_factory=list)
    judge: list[DataSet] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.to_server or self.to_client or self.judge or self.refusals)


class _State(Enum):
    READY = "ready"  # may go on as soon as everything before it has
    HELD = "held"  # a message still arriving
    JUDGING = "judging"  # complete, waiting for its verdict
    DROPPED = "dropped"  # refused: never sent


@dataclass(slots=True, eq=False)
class _Segment:
    """A run of client PDUs that goes on (or is dropped) as one, in queue order."""

    state: _State
    pdus: list[bytes] = field(default_factory=list)
    size: int = 0
    ticket: int = 0
    message: _Message | None = None

    def add(self, pdu: bytes) -> int:
        self.pdus.append(pdu)
        self.size += len(pdu)
        return len(self.pdus) - 1


@dataclass(slots=True, eq=False)
class _Message:
    """A DIMSE message being reassembled from its fragments (PS3.7 §6.3, PS3.8 Annex E)."""

    context_id: int
    segment: _Segment
    command_parts: list[bytes] = field(default_factory=list)
    command_size: int = 0
    command: Command | None = None
    #: (index in the segment's PDUs, offset, length) of each data set fragment.
    data: list[tuple[int, int, int]] = field(default_factory=list)
    data_size: int = 0
    too_large: bool = False
    complete: bool = False


@dataclass(slots=True, eq=False)
class _Tracker:
    """The server's messages, followed only to know where one ends (nothing is held)."""

    inside: bool = False
    context_id: int = 0
    command_parts: list[bytes] = field(default_factory=list)
    command_size: int = 0
    in_data: bool = False


class Relay:
    """The guard's relay of one association (see the module docstring).

    ``admit`` is asked about the client's A-ASSOCIATE-RQ: a reason to refuse it (the guard is
    not ready), or None. A refused association is answered with an A-ASSOCIATE-RJ (transient,
    "temporary congestion") and the server never hears of it.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        admit: Callable[[AssociateRQ], str | None] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self._admit = admit
        self.phase = Phase.IDLE
        self._client = PduReader(self.limits.max_pdu)
        self._server = PduReader(self.limits.max_pdu)
        self._queue: deque[_Segment] = deque()
        #: Bytes in the queue's segments (kept as a count: summing them per call would make a
        #: flood of small messages behind a held one quadratic).
        self._queued = 0
        self._current: _Message | None = None
        self._tickets: dict[int, _Segment] = {}
        self._next_ticket = 1
        self._answers: list[bytes] = []
        self._tracker = _Tracker()
        #: Context id → abstract syntax (the RQ's proposals) and → transfer syntax (accepted).
        self.abstract_syntaxes: dict[int, str] = {}
        self.transfer_syntaxes: dict[int, str] = {}
        #: What the client receives at most (its RQ's Maximum Length, as lowered).
        self.client_max = self.limits.max_pdu - HEADER
        #: True once the relay aborted the association itself.
        self.aborted = False
        self._judge: list[DataSet] = []
        self._refusals: list[Refusal] = []

    # -- state ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once nothing more is relayed (rejected, released, aborted)."""
        return self.phase is Phase.CLOSED

    @property
    def held(self) -> int:
        """Bytes the relay holds now (PDUs waiting, PDUs in assembly, answers)."""
        return self._queued + self._client.pending + self._server.pending

    @property
    def pending(self) -> tuple[int, ...]:
        """Tickets of the data sets waiting for a verdict."""
        return tuple(self._tickets)

    # -- input ----------------------------------------------------------------------------------

    def from_client(self, data: bytes) -> Output:
        """Bytes the client sent: what goes on now, what is to be judged, what was refused."""
        out = Output()
        if self.phase is Phase.CLOSED or not data:
            return out
        try:
            for raw in self._client.feed(data):
                self._client_pdu(raw, out)
                if self.closed:
                    return out
            if self.held > self.limits.held:
                raise ProtocolError(
                    f"more than {self.limits.held} bytes held for one association",
                    AbortReason.NOT_SPECIFIED,
                )
        except ProtocolError as exc:
            self._abort(out, f"client: {exc.reason}", exc.abort)
            return out
        self._flush(out)
        return out

    def from_server(self, data: bytes) -> Output:
        """Bytes the server sent: they go on to the client as whole PDUs."""
        out = Output()
        if self.phase is Phase.CLOSED or not data:
            return out
        try:
            for raw in self._server.feed(data):
                self._server_pdu(raw, out)
                if self.closed:
                    return out
        except ProtocolError as exc:
            self._abort(out, f"server: {exc.reason}", exc.abort)
            return out
        self._flush(out)
        return out

    def decide(self, ticket: int, blocked: tuple[str, ...] | None) -> Output:
        """The verdict on data set ``ticket``: None lets it pass, else the rules that block it
        (named in the Error Comment of the answer)."""
        out = Output()
        segment = self._tickets.pop(ticket, None)
        if segment is None or self.phase is Phase.CLOSED:
            return out  # aborted meanwhile: nothing to do
        message = segment.message
        assert message is not None and message.command is not None
        if blocked is None:
            segment.state = _State.READY
        else:
            try:
                self._refuse(segment, message.command, error_comment(blocked), too_large=False)
            except ProtocolError as exc:
                self._abort(out, exc.reason, exc.abort)
                return out
        self._flush(out)
        return out

    def abort(self, reason: str) -> Output:
        """Abort the association both ways now (the addon cannot go on with it)."""
        out = Output()
        if self.phase is not Phase.CLOSED:
            self._abort(out, reason, AbortReason.NOT_SPECIFIED)
        return out

    def close(self) -> None:
        """Drop everything held (the connection is gone)."""
        self.phase = Phase.CLOSED
        self._drop()

    # -- the client's PDUs ------------------------------------------------------------------------

    def _client_pdu(self, raw: bytes, out: Output) -> None:
        kind = raw[0]
        if kind == PduType.P_DATA_TF:
            if self.phase is not Phase.ESTABLISHED:
                raise ProtocolError(
                    f"P-DATA-TF while the association is {self.phase.value}",
                    AbortReason.UNEXPECTED_PDU,
                )
            self._p_data(raw)
            return
        pdu = parse(raw)
        if isinstance(pdu, AssociateRQ):
            if self.phase is not Phase.IDLE:
                raise ProtocolError("a second A-ASSOCIATE-RQ", AbortReason.UNEXPECTED_PDU)
            reason = self._admit(pdu) if self._admit is not None else None
            if reason is not None:
                # Temporary congestion (PS3.8 Table 9-21: source 3, reason 1): try again later.
                out.to_client.append(AssociateRJ(2, 3, 1).encode())
                out.refusals.append(Refusal("rejected", reason))
                self.phase = Phase.CLOSED
                self._drop()
                return
            self.abstract_syntaxes = {c.id: c.abstract_syntax for c in pdu.contexts}
            if pdu.user.max_length:
                self.client_max = min(pdu.user.max_length, self.limits.max_pdu - HEADER)
            self.phase = Phase.REQUESTED
            self._ready(patch_max_length(raw, self.limits.max_pdu - HEADER))
        elif isinstance(pdu, Abort):
            # Everything held is dropped (the client gave up on it); the abort goes on now.
            self._drop()
            self.phase = Phase.CLOSED
            out.to_server.append(raw)
        elif isinstance(pdu, ReleaseRQ | ReleaseRP):
            if self.phase not in (Phase.ESTABLISHED, Phase.RELEASING):
                raise ProtocolError(
                    f"release while the association is {self.phase.value}",
                    AbortReason.UNEXPECTED_PDU,
                )
            if self._current is not None:
                raise ProtocolError("release in the middle of a message")
            self.phase = Phase.RELEASING
            self._ready(raw)
        else:
            raise ProtocolError(
                f"{PduType(kind).name} from the association requestor", AbortReason.UNEXPECTED_PDU
            )

    def _ready(self, raw: bytes) -> None:
        """A PDU that goes on as soon as everything before it has."""
        if self._queue and self._queue[-1].state is _State.READY:
            self._store(self._queue[-1], raw)
        else:
            segment = _Segment(_State.READY)
            self._store(segment, raw)
            self._queue.append(segment)

    def _p_data(self, raw: bytes) -> None:
        """Assign each PDV of a P-DATA-TF to its message; store the PDU (split at message
        boundaries) with the message it belongs to; finish the messages it completes."""
        groups: list[tuple[_Message, list[Pdv]]] = []
        for pdv in split_pdvs(raw):
            message = self._current or self._start(pdv)
            if not groups or groups[-1][0] is not message:
                groups.append((message, []))
            groups[-1][1].append(pdv)
            self._advance(message, pdv, raw)
        for message, pdvs in groups:
            if len(groups) == 1:
                pdu, placed = raw, pdvs
            else:
                pdu, placed = _rebuild(raw, pdvs)
            if not message.too_large:
                index = self._store(message.segment, pdu)
                message.data.extend(
                    (index, pdv.start, pdv.length) for pdv in placed if not pdv.command
                )
            if message.complete:
                self._finish(message)

    def _start(self, pdv: Pdv) -> _Message:
        if not pdv.command:
            raise ProtocolError(
                "a data set fragment where a command was due", AbortReason.UNEXPECTED_PARAMETER
            )
        if pdv.context_id not in self.transfer_syntaxes:
            raise ProtocolError(
                f"presentation context {pdv.context_id} was not accepted",
                AbortReason.INVALID_PARAMETER,
            )
        segment = _Segment(_State.HELD)
        message = _Message(pdv.context_id, segment)
        segment.message = message
        self._queue.append(segment)
        self._current = message
        return message

    def _advance(self, message: _Message, pdv: Pdv, raw: bytes) -> None:
        if pdv.context_id != message.context_id:
            raise ProtocolError(
                "fragments of one message on different presentation contexts",
                AbortReason.INVALID_PARAMETER,
            )
        if message.command is None:
            message.command = self._command_fragment(message, pdv, raw)
            if message.command is not None and not message.command.has_data_set:
                message.complete = True
                self._current = None
            return
        if pdv.command:
            raise ProtocolError(
                "a command fragment inside a data set", AbortReason.UNEXPECTED_PARAMETER
            )
        message.data_size += pdv.length
        if message.data_size > self.limits.max_data_set and not message.too_large:
            # Not held: what came is dropped now, what comes is dropped as it comes.
            message.too_large = True
            self._empty(message.segment)
            message.data.clear()
        if pdv.last:
            message.complete = True
            self._current = None

    def _command_fragment(self, into: _Message | _Tracker, pdv: Pdv, raw: bytes) -> Command | None:
        """One fragment of a command set, added to ``into`` (a client's message or the
        server's tracked one); the command once its last fragment came, else None."""
        if not pdv.command:
            raise ProtocolError(
                "a data set fragment before the command ended", AbortReason.UNEXPECTED_PARAMETER
            )
        into.command_size += pdv.length
        if into.command_size > self.limits.max_command:
            raise ProtocolError(
                f"command set over {self.limits.max_command} bytes", AbortReason.INVALID_PARAMETER
            )
        into.command_parts.append(bytes(pdv.fragment(raw)))
        if not pdv.last:
            return None
        command = decode(b"".join(into.command_parts))
        into.command_parts.clear()
        into.command_size = 0
        return command

    def _finish(self, message: _Message) -> None:
        segment = message.segment
        command = message.command
        assert command is not None
        if not command.has_data_set:
            segment.state = _State.READY
            return
        if message.too_large:
            self._refuse(
                segment,
                command,
                f"kanta-guard: data set over {self.limits.max_data_set} bytes",
                too_large=True,
            )
            self._refusals.append(
                Refusal(
                    "too-large",
                    f"data set of {message.data_size} bytes exceeds the guard's limit of "
                    f"{self.limits.max_data_set}",
                    command,
                )
            )
            return
        ticket = self._next_ticket
        self._next_ticket += 1
        segment.state = _State.JUDGING
        segment.ticket = ticket
        self._tickets[ticket] = segment
        views = [memoryview(segment.pdus[i])[s : s + n] for i, s, n in message.data]
        self._judge.append(
            DataSet(
                ticket,
                b"".join(views),
                command,
                message.context_id,
                self.abstract_syntaxes.get(message.context_id, ""),
                self.transfer_syntaxes[message.context_id],
            )
        )

    def _refuse(
        self, segment: _Segment, command: Command, comment: str, *, too_large: bool
    ) -> None:
        """Drop a message and answer it, or raise (abort) when it cannot be answered."""
        status = response_status(command, too_large=too_large)
        if status is None:
            raise ProtocolError(
                f"a {command.label} carrying a data set was refused; it cannot be answered",
                AbortReason.NOT_SPECIFIED,
            )
        segment.state = _State.DROPPED
        self._empty(segment)
        message = segment.message
        assert message is not None
        answer = failure_response(command, status, comment)
        self._answers.extend(self._fragments(message.context_id, answer))

    def _fragments(self, context_id: int, command: bytes) -> list[bytes]:
        """A command set as P-DATA-TF PDUs no longer than the client receives."""
        size = max(1, self.client_max - _PDV_HEAD)
        pdus = []
        for start in range(0, len(command), size):
            last = start + size >= len(command)
            control = 0x03 if last else 0x01
            pdus.append(PData.build([(context_id, control, command[start : start + size])]))
        return pdus

    # -- the server's PDUs ------------------------------------------------------------------------

    def _server_pdu(self, raw: bytes, out: Output) -> None:
        kind = raw[0]
        if kind == PduType.P_DATA_TF:
            if self.phase not in (Phase.ESTABLISHED, Phase.RELEASING):
                raise ProtocolError(
                    f"P-DATA-TF while the association is {self.phase.value}",
                    AbortReason.UNEXPECTED_PDU,
                )
            self._track(raw)
            out.to_client.append(raw)
            return
        pdu = parse(raw)
        if isinstance(pdu, AssociateAC):
            if self.phase is not Phase.REQUESTED:
                raise ProtocolError("an unexpected A-ASSOCIATE-AC", AbortReason.UNEXPECTED_PDU)
            self.transfer_syntaxes = pdu.accepted()
            self.phase = Phase.ESTABLISHED
            out.to_client.append(patch_max_length(raw, self.limits.max_pdu - HEADER))
        elif isinstance(pdu, AssociateRJ):
            if self.phase is not Phase.REQUESTED:
                raise ProtocolError("an unexpected A-ASSOCIATE-RJ", AbortReason.UNEXPECTED_PDU)
            self.phase = Phase.CLOSED
            out.to_client.append(raw)
        elif isinstance(pdu, Abort):
            self._drop()
            self.phase = Phase.CLOSED
            out.to_client.append(raw)
        elif isinstance(pdu, AssociateRQ):
            raise ProtocolError("an A-ASSOCIATE-RQ from the acceptor", AbortReason.UNEXPECTED_PDU)
        else:  # A-RELEASE-RQ (a collision, or the acceptor's) or -RP
            if self.phase not in (Phase.ESTABLISHED, Phase.RELEASING):
                raise ProtocolError(
                    f"release while the association is {self.phase.value}",
                    AbortReason.UNEXPECTED_PDU,
                )
            out.to_client.append(raw)

    def _track(self, raw: bytes) -> None:
        """Follow the server's messages to know when its stream is between two of them."""
        tracker = self._tracker
        for pdv in split_pdvs(raw):
            if not tracker.inside:
                if not pdv.command:
                    raise ProtocolError(
                        "a data set fragment where a command was due",
                        AbortReason.UNEXPECTED_PARAMETER,
                    )
                tracker.inside, tracker.context_id, tracker.in_data = True, pdv.context_id, False
            elif pdv.context_id != tracker.context_id:
                raise ProtocolError(
                    "fragments of one message on different presentation contexts",
                    AbortReason.INVALID_PARAMETER,
                )
            if not tracker.in_data:
                command = self._command_fragment(tracker, pdv, raw)
                if command is not None:
                    if command.has_data_set:
                        tracker.in_data = True
                    else:
                        tracker.inside = False
            else:
                if pdv.command:
                    raise ProtocolError(
                        "a command fragment inside a data set", AbortReason.UNEXPECTED_PARAMETER
                    )
                if pdv.last:
                    tracker.inside = tracker.in_data = False

    # -- output ----------------------------------------------------------------------------------

    def _flush(self, out: Output) -> None:
        """Everything that may go on now, in order; and the judgements and answers due."""
        queue = self._queue
        while queue and queue[0].state in (_State.READY, _State.DROPPED):
            segment = queue.popleft()
            self._queued -= segment.size
            if segment.state is _State.READY:
                out.to_server.extend(segment.pdus)
        if self._answers and not self._tracker.inside:
            out.to_client.extend(self._answers)
            self._answers.clear()
        if self._judge:
            out.judge.extend(self._judge)
            self._judge.clear()
        if self._refusals:
            out.refusals.extend(self._refusals)
            self._refusals.clear()

    def _abort(self, out: Output, reason: str, why: int) -> None:
        """A-ABORT to both sides, everything held dropped, nothing more relayed."""
        self._drop()
        self.phase = Phase.CLOSED
        self.aborted = True
        abort = Abort(reason=why).encode()
        out.to_server.append(abort)
        out.to_client.append(abort)
        out.refusals.append(Refusal("aborted", reason))

    def _store(self, segment: _Segment, pdu: bytes) -> int:
        """Add a PDU to a segment of the queue; its index there."""
        self._queued += len(pdu)
        return segment.add(pdu)

    def _empty(self, segment: _Segment) -> None:
        """Free a segment's PDUs (it stays in the queue, in order)."""
        self._queued -= segment.size
        segment.pdus.clear()
        segment.size = 0

    def _drop(self) -> None:
        self._queue.clear()
        self._queued = 0
        self._tickets.clear()
        self._answers.clear()
        self._judge.clear()
        self._current = None
        self._refusals.clear()


def _rebuild(raw: bytes, pdvs: list[Pdv]) -> tuple[bytes, list[Pdv]]:
    """A P-DATA-TF of some of ``raw``'s PDVs, and where they lie in it."""
    pdu = PData.build([(p.context_id, p.control, bytes(p.fragment(raw))) for p in pdvs])
    return pdu, list(split_pdvs(pdu))

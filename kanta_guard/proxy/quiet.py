"""Masking mitmproxy's own output: its log lines, error pages, flow dumps and tracebacks.

mitmproxy echoes what a client sent where the guard's masking never sees it: its 400 page quotes
a malformed request line or header line (``Bad HTTP request line: b'GET /<code> …'``), its log
quotes the bytes of a request cut off before its headers ended (``{buf!r}``, where a tab is
written ``\\t``), ``mitmdump --flow-detail`` prints the headers of a flow that failed, and a crash
report's traceback holds reprs of the events it was handling. :func:`install` closes each of
those doors, with :func:`~kanta_guard.idcode.mask_any_form`, which also masks a code in the
escaped and encoded forms such output takes:

- every :class:`logging.LogRecord`, process-wide, is masked when it is made (a record factory
  chained to the previous one), its traceback and stack folded into the message, so no handler
  (the terminal, mitmweb's event log, a file) can format anything unmasked;
- mitmproxy's error pages (``format_error`` of its HTTP/1, HTTP/2 and HTTP/3 layers, and
  ``make_error_response`` of HTTP/1) mask their message;
- the flow dumper of ``mitmdump`` masks every line it prints;
- ``sys.excepthook``, ``threading.excepthook`` and ``sys.unraisablehook`` print masked
  tracebacks (asyncio's unhandled exceptions go to the ``asyncio`` logger, hence the factory).

mitmproxy's functions are patched where the modules look them up (each layer imported
``format_error`` by name). A target missing in another mitmproxy version makes :func:`install`
raise :class:`RuntimeError` rather than leave that door open.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ..idcode import mask_any_form

__all__ = ["PATCH_TARGETS", "install", "mask_record", "masked_traceback"]

#: ``(module, attribute)`` of every mitmproxy function :func:`install` wraps.
PATCH_TARGETS: tuple[tuple[str, str], ...] = (
    ("mitmproxy.proxy.layers.http._base", "format_error"),
    ("mitmproxy.proxy.layers.http._http1", "format_error"),
    ("mitmproxy.proxy.layers.http._http1", "make_error_response"),
    ("mitmproxy.proxy.layers.http._http2", "format_error"),
    ("mitmproxy.proxy.layers.http._http3", "format_error"),
)
_DUMPER = ("mitmproxy.addons.dumper", "Dumper")
_MARK = "__kanta_guard_masked__"  # set on every wrapper: install() does not wrap twice
_lock = threading.Lock()


def masked_traceback(
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> str:
    """A traceback formatted as Python prints it, then masked (its frames quote reprs)."""
    return mask_any_form("".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n"))


def mask_record(record: logging.LogRecord) -> None:
    """Mask ``record`` in place: its message with its arguments filled in, and its traceback and
    stack (folded into the message, since a formatter would print them unmasked)."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string; logging would print msg and args itself
        message = f"{record.msg!s} {record.args!r}"
    parts = [message]
    if record.exc_info and record.exc_info[0] is not None:
        parts.append("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    record.msg = mask_any_form("\n".join(parts))
    record.args = ()
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None


def install() -> None:
    """Mask mitmproxy's output from now on, process-wide; calling it again changes nothing.

    Raises :class:`RuntimeError` if a mitmproxy function it patches is not where it expects.
    """
    with _lock:
        targets = [(_module(name), attr) for name, attr in PATCH_TARGETS]
        dumper = getattr(_module(_DUMPER[0]), _DUMPER[1], None)
        missing = [f"{m.__name__}.{a}" for m, a in targets if not callable(getattr(m, a, None))]
        if dumper is None or not callable(getattr(dumper, "echo", None)):
            missing.append(f"{_DUMPER[0]}.{_DUMPER[1]}.echo")
        if missing:
            raise RuntimeError(
                "kanta-guard cannot mask mitmproxy's output: not found in this mitmproxy: "
                + ", ".join(missing)
            )
        for module, attr in targets:
            _wrap(module, attr, _masked_message)
        _wrap(dumper, "echo", _masked_echo)
        _install_record_factory()
        _install_hooks()


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise RuntimeError(
            f"kanta-guard cannot mask mitmproxy's output: cannot import {name}: {exc}"
        ) from None


def _wrap(owner: Any, attr: str, make: Callable[[Any], Any]) -> None:
    original = getattr(owner, attr)
    if not getattr(original, _MARK, False):
        wrapper = make(original)
        setattr(wrapper, _MARK, True)
        setattr(owner, attr, wrapper)


def _masked_message(original: Callable[..., bytes]) -> Callable[..., bytes]:
    """``format_error`` and ``make_error_response`` both take ``(status_code, message)``."""

    def wrapper(status_code: int, message: str = "") -> bytes:
        return original(status_code, mask_any_form(message))

    return wrapper


def _masked_echo(original: Callable[..., None]) -> Callable[..., None]:
    def echo(self: object, text: str, ident: int | None = None, **style: object) -> None:
        original(self, mask_any_form(text), ident, **style)

    return echo


def _install_record_factory() -> None:
    previous = logging.getLogRecordFactory()
    if getattr(previous, _MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        mask_record(record)
        return record

    setattr(factory, _MARK, True)
    logging.setLogRecordFactory(factory)


def _install_hooks() -> None:
    if not getattr(sys.excepthook, _MARK, False):

        def excepthook(
            exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
        ) -> None:
            print(masked_traceback(exc_type, exc, tb), file=sys.stderr)

        setattr(excepthook, _MARK, True)
        sys.excepthook = excepthook
    if not getattr(threading.excepthook, _MARK, False):

        def thread_hook(args: threading.ExceptHookArgs) -> None:
            if args.exc_type is SystemExit:
                return  # as the default hook: a thread's SystemExit is silent
            name = args.thread.name if args.thread is not None else "?"
            shown = masked_traceback(args.exc_type, args.exc_value, args.exc_traceback)
            print(f"Exception in thread {mask_any_form(name)}:\n{shown}", file=sys.stderr)

        setattr(thread_hook, _MARK, True)
        threading.excepthook = thread_hook
    if not getattr(sys.unraisablehook, _MARK, False):

        def unraisable(info: sys.UnraisableHookArgs) -> None:
            what = info.err_msg or "Exception ignored in"
            where = mask_any_form(f"{what}: {info.object!r}")
            shown = masked_traceback(info.exc_type, info.exc_value, info.exc_traceback)
            print(f"{where}\n{shown}", file=sys.stderr)

        setattr(unraisable, _MARK, True)
        sys.unraisablehook = unraisable

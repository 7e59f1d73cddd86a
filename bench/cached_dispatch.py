"""A mitmdump script that gives mitmdump the guard's event dispatch (kanta_guard.proxy.dispatch)
and nothing else: the benchmark's second baseline, so that the guard's own cost can be read
apart from what the dispatch saves (``mitmdump -s bench/cached_dispatch.py``)."""

from __future__ import annotations

from typing import Any

from mitmproxy import ctx

from kanta_guard.proxy import dispatch


def load(loader: Any) -> None:
    dispatch.install(ctx.master)

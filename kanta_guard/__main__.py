"""``python -m kanta_guard``: the command line, where the ``kanta-guard`` script is not on PATH."""

from __future__ import annotations

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())

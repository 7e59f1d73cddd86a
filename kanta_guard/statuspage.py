"""The guard's status as one self-contained HTML page: data in (``GuardState.status()``), HTML out.

What a tester or an operator wants at a glance: is the guard letting traffic through, what has it
judged and stopped since start (counts by verdict and rule, the last blocks with their masked
evidence), under which policy, registry and testing mode, and are its workers and its log
healthy. One page with its CSS inline and no script, image or font from anywhere (the proxy and
mitmweb's dashboard both serve it; the dashboard's Content-Security-Policy allows inline styles
only). Every value is masked (:func:`~kanta_guard.idcode.mask_text`) and HTML-escaped on the
way out, whatever the caller handed in: the data is masked by its producers already, the page
does not rely on it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from .idcode import mask_text

__all__ = ["CONTENT_TYPE", "render"]

CONTENT_TYPE = "text/html; charset=utf-8"

#: Seconds between reloads: the page is a live view, but cheap to render.
REFRESH_SECONDS = 10

_CSS = """
:root { color-scheme: light; --ok: #1b7a3a; --bad: #b3261e; --warn: #a15c00; --line: #d9dce1; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: #f5f6f8; color: #1d2127; }
header { background: #1d2127; color: #fff; padding: 14px 24px; display: flex;
         align-items: center; gap: 16px; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .since { color: #b9bec7; font-size: 13px; }
main { padding: 16px 24px 32px; display: grid; gap: 16px;
       grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px;
          min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em;
     color: #4a515c; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line);
         vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; color: #4a515c; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code { font: 12px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 600;
         font-size: 13px; white-space: nowrap; }
th { white-space: nowrap; }
td.t { white-space: nowrap; }
.actions { display: grid; gap: 4px 16px;
           grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
.actions div { display: flex; justify-content: space-between; align-items: center;
               border-bottom: 1px solid var(--line); padding: 2px 0; }
.ok { background: #dff3e4; color: var(--ok); }
.bad { background: #fbe3e1; color: var(--bad); }
.warnc { background: #fdf0d9; color: var(--warn); }
.counts { display: flex; gap: 12px; flex-wrap: wrap; }
.count { flex: 1 1 90px; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.count .v { font-size: 26px; font-weight: 600; font-variant-numeric: tabular-nums; }
.count.block .v { color: var(--bad); } .count.warn .v { color: var(--warn); }
.count.pass .v { color: var(--ok); }
.bar { height: 8px; background: #e9ebef; border-radius: 4px; min-width: 60px; }
.bar span { display: block; height: 8px; border-radius: 4px; background: #5470c6; }
.muted { color: #6b7280; }
.reason { color: #fff; background: var(--bad); padding: 8px 24px; margin: 0; }
footer { padding: 0 24px 24px; color: #6b7280; font-size: 12px; }
a { color: #2f5bd3; }
"""


def render(
    status: Mapping[str, object],
    *,
    json_href: str | None = "status.json",
    metrics_href: str | None = "metrics",
) -> str:
    """The status page for ``status`` (the shape of ``GuardState.status()``); the links to the
    same status as JSON and to the metrics are left out when None."""
    stats = _map(status.get("stats"))
    ready = status.get("ready") is True
    started = _text(stats.get("started")) or "?"
    head = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>kanta-guard status</title>"
        f"<style>{_CSS}</style></head><body>"
    )
    badge = (
        '<span class="badge ok" id="ready">ready</span>'
        if ready
        else '<span class="badge bad" id="ready">not ready: refusing all traffic</span>'
    )
    top = (
        f"<header><h1>kanta-guard</h1>{badge}"
        f'<span class="since">since {_e(started)}, up {_e(_duration(stats.get("uptime_seconds")))}'
        "</span></header>"
    )
    reason = "" if ready else f'<p class="reason">{_e(status.get("reason") or "")}</p>'
    sections = [
        _counts(stats),
        _recent(stats),
        _rules(stats, _map(status.get("policy"))),
        _hosts(stats),
        _scan(stats),
        _policy(status),
        _workers(status),
        _log(status, stats),
        _actions(status),
    ]
    links = [
        f'<a href="{_e(href)}">{label}</a>'
        for href, label in ((json_href, "status as JSON"), (metrics_href, "Prometheus metrics"))
        if href is not None
    ]
    footer = (
        "<footer>Evidence is masked: a real-range identity code never appears here; 900-series "
        "test codes are shown so that a tester can fix them."
        + (" " + " · ".join(links) if links else "")
        + "</footer>"
    )
    return (
        head + top + reason + "<main>" + "".join(sections) + "</main>" + footer + "</body></html>"
    )


# -- sections ------------------------------------------------------------------------------------


def _counts(stats: Mapping[str, object]) -> str:
    requests = _map(stats.get("requests"))
    cells = "".join(
        f'<div class="count {v}" id="count-{v}"><div class="v">{_int(requests.get(v))}</div>'
        f'<div class="muted">{label}</div></div>'
        for v, label in (("pass", "passed"), ("warn", "warned"), ("block", "blocked"))
    )
    return (
        '<section class="wide"><h2>Requests since start</h2>'
        f'<div class="counts">{cells}</div></section>'
    )


def _recent(stats: Mapping[str, object]) -> str:
    blocks = [_map(b) for b in _seq(stats.get("recent_blocks"))]
    if not blocks:
        body = '<p class="muted">No request has been blocked since start.</p>'
    else:
        rows = []
        for block in blocks:
            findings = [_map(f) for f in _seq(block.get("findings"))]
            evidence = "<br>".join(
                f"<code>{_e(f.get('rule'))}</code> ({_e(f.get('role'))}) at "
                f"<code>{_e(f.get('location'))}</code>"
                + (f": <code>{_e(f.get('evidence'))}</code>" if f.get("evidence") else "")
                for f in findings
            )
            omitted = _int(block.get("omitted"))
            if omitted:
                evidence += f'<br><span class="muted">+{omitted} more</span>'
            target = f"{_text(block.get('host'))}{_text(block.get('path'))}"
            rows.append(
                f"<tr><td><code>{_e(block.get('time'))}</code></td>"
                f'<td class="t">{_e(block.get("method")) or "(connection)"}</td>'
                f"<td><code>{_e(target)}</code></td>"
                f"<td>{', '.join(f'<code>{_e(r)}</code>' for r in _seq(block.get('rules')))}</td>"
                f"<td>{evidence}</td></tr>"
            )
        body = (
            '<table id="recent"><tr><th>time (UTC)</th><th>method</th><th>host and path</th>'
            "<th>rules</th><th>evidence (masked)</th></tr>" + "".join(rows) + "</table>"
        )
    return f'<section class="wide"><h2>Last blocks, newest first</h2>{body}</section>'


def _rules(stats: Mapping[str, object], policy: Mapping[str, object]) -> str:
    findings = _map(stats.get("findings"))
    roles = _map(stats.get("roles"))
    actions = _map(policy.get("rules"))
    if not findings:
        return _section("Findings by rule", '<p class="muted">No findings since start.</p>')
    top = max((_int(n) for n in findings.values()), default=0) or 1
    rows = "".join(
        f"<tr><td><code>{_e(rule)}</code></td><td>{_action(actions.get(rule))}</td>"
        f'<td class="n">{_int(n)}</td><td>{_bar(_int(n), top)}</td>'
        f'<td class="muted">{_roles(_map(roles.get(rule)))}</td></tr>'
        for rule, n in sorted(findings.items(), key=lambda item: (-_int(item[1]), item[0]))
    )
    return _section(
        "Findings by rule",
        '<table id="rules"><tr><th>rule</th><th>action</th><th>findings</th><th></th>'
        f"<th>roles</th></tr>{rows}</table>",
    )


def _hosts(stats: Mapping[str, object]) -> str:
    hosts = _map(stats.get("blocks_by_host"))
    if not hosts:
        return _section("Blocks by host", '<p class="muted">None.</p>')
    top = max((_int(n) for n in hosts.values()), default=0) or 1
    rows = "".join(
        f'<tr><td><code>{_e(host)}</code></td><td class="n">{_int(n)}</td>'
        f"<td>{_bar(_int(n), top)}</td></tr>"
        for host, n in sorted(hosts.items(), key=lambda item: (-_int(item[1]), item[0]))[:20]
    )
    return _section(
        "Blocks by host", f"<table><tr><th>host</th><th>blocks</th><th></th></tr>{rows}</table>"
    )


def _scan(stats: Mapping[str, object]) -> str:
    scan = _map(stats.get("scan_seconds"))
    count = _int(scan.get("count"))
    total = scan.get("sum")
    mean = (
        f"{float(total) / count * 1000:.2f} ms" if count and isinstance(total, int | float) else "–"
    )
    rows = [
        ("scans", str(count)),
        ("mean", mean),
        ("median at most", _seconds(scan.get("p50"))),
        ("99th percentile at most", _seconds(scan.get("p99"))),
    ]
    return _section("Scan time", _pairs(rows))


def _policy(status: Mapping[str, object]) -> str:
    policy = _map(status.get("policy"))
    registry = _map(status.get("registry"))
    if not policy:
        text = '<p class="muted">No valid policy is active.</p>'
    else:
        text = _pairs(
            [
                ("source", f"<code>{_e(policy.get('source'))}</code>"),
                ("digest", f"<code>{_e(policy.get('digest'))}</code>"),
                ("testing mode", _e(status.get("testing"))),
                (
                    "registry",
                    "none"
                    if not registry
                    else f"<code>{_e(registry.get('path'))}</code>, "
                    f"{_int(registry.get('identities'))} test identities"
                    + (
                        f", {_int(registry.get('bytes'))} bytes"
                        if registry.get("bytes") is not None
                        else ""
                    )
                    + f", <code>{_e(registry.get('digest'))}</code>",
                ),
                (
                    "weakening at run time",
                    "allowed" if policy.get("allow_weakening") else "refused",
                ),
            ],
            raw=True,
        )
    return _section("Policy", text)


def _actions(status: Mapping[str, object]) -> str:
    actions = _map(_map(status.get("policy")).get("rules"))
    if not actions:
        return ""
    cells = "".join(
        f"<div><code>{_e(rule)}</code>{_action(action)}</div>"
        for rule, action in sorted(actions.items())
    )
    return (
        '<section class="wide"><h2>Rule actions of the active policy</h2>'
        f'<div class="actions" id="actions">{cells}</div></section>'
    )


def _workers(status: Mapping[str, object]) -> str:
    health = _map(status.get("worker_health"))
    configured, running = _int(health.get("configured")), _int(health.get("running"))
    if health.get("scanning_in_proxy"):
        state = '<span class="badge warnc">no workers: scans on the proxy thread</span>'
    elif running >= configured:
        state = '<span class="badge ok">all running</span>'
    else:
        state = f'<span class="badge warnc">{running} of {configured} running</span>'
    return _section(
        "Scan workers",
        _pairs(
            [
                ("state", state),
                ("configured", str(configured)),
                ("running", str(running)),
                ("replaced after a failure", str(_int(health.get("restarts")))),
            ],
            raw=True,
        ),
    )


def _log(status: Mapping[str, object], stats: Mapping[str, object]) -> str:
    log = _map(status.get("log"))
    if not log:
        return _section("Blocked-request log", '<p class="muted">No log is open.</p>')
    writable = log.get("writable") is True
    state = (
        '<span class="badge ok">writable</span>'
        if writable
        else f'<span class="badge bad">cannot be written: {_e(log.get("error"))}</span>'
    )
    rows = [
        ("path", f"<code>{_e(log.get('path'))}</code>"),
        ("state", state),
        ("required by the policy", "yes" if log.get("required") else "no"),
        ("failed writes since start", str(_int(stats.get("log_failures")))),
    ]
    if log.get("rotation_error"):
        rows.append(
            ("rotation", f'<span class="badge warnc">{_e(log.get("rotation_error"))}</span>')
        )
    return _section("Blocked-request log", _pairs(rows, raw=True))


# -- helpers -------------------------------------------------------------------------------------


def _e(value: object) -> str:
    """Masked and escaped (None as empty)."""
    return html.escape(mask_text(_text(value)), quote=True)


def _text(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _map(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _pairs(rows: Sequence[tuple[str, str]], *, raw: bool = False) -> str:
    """A two-column table; the values are escaped unless ``raw`` (already built from _e)."""
    cells = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{v if raw else _e(v)}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def _bar(value: int, top: int) -> str:
    width = max(2, round(100 * value / top)) if value else 0
    return f'<div class="bar"><span style="width:{width}%"></span></div>'


def _action(value: object) -> str:
    action = _text(value)
    css = {"block": "bad", "warn": "warnc", "off": ""}.get(action, "")
    return f'<span class="badge {css}">{_e(action or "?")}</span>'


def _roles(roles: Mapping[str, object]) -> str:
    return ", ".join(
        f"{_e(role)} {_int(n)}"
        for role, n in sorted(roles.items(), key=lambda item: (-_int(item[1]), item[0]))
    )


def _seconds(value: object) -> str:
    if value == "+Inf":
        return "past the last bucket"
    if not isinstance(value, int | float):
        return "–"
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"


def _duration(value: object) -> str:
    seconds = int(value) if isinstance(value, int | float) else 0
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"

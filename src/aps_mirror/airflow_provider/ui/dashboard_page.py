"""The dashboard's HTML: one self-contained page (inline CSS and SVG), sized for a 1366x768 laptop.

Every value from the catalog, the database or the environment goes through `esc`; exact figures
ride along in `data-*` attributes (and title tooltips) next to their rounded, readable form.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from html import escape
from urllib.parse import quote
from typing import TYPE_CHECKING, Any

from aps_mirror.airflow_provider.ui.charts import Series, bar_chart
from aps_mirror.airflow_provider.ui.connection_health import ConnectionHealth
from aps_mirror.airflow_provider.ui.dashboard import (
    NIGHTS_SHOWN,
    Dashboard,
    MirrorStatus,
    advice,
    plain_reason,
)
from aps_mirror.airflow_provider.ui.live_state import LIVE, OFF, PAUSED
from aps_mirror.airflow_provider.ui.mirror_locations import MIRRORS_ENV
from aps_mirror.catalog.report import project_verification, verification_scope
from aps_mirror.mirror.progress import human_bytes

if TYPE_CHECKING:
    from aps_mirror.catalog.report import CatalogReport, NightlyChanges, ProjectStatus, Verification

FAILURES_SHOWN = 100
STATUS_ORDER = {"failing": 0, "stale": 1, "never": 2, "ok": 3}  # problems first
RUN_BADGE = {"success": "ok", "failed": "failing", "running": "stale", "queued": "stale"}
STATUS_LABEL = {"ok": "ok", "stale": "stale", "failing": "failing", "never": "never synced"}
CATEGORY_LABEL = {"missing": "missing", "corrupt": "corrupt", "orphans": "orphans", "outdated": "outdated",
                  "not_mirrored": "not mirrored", "stale_uploads": "stale uploads",
                  "unchecked": "could not be checked"}
LIVE_BADGE = {LIVE: "live", PAUSED: "warn", OFF: "never"}
HOOK_BADGE = {"active": "ok", "error": "alert", "missing": "warn"}  # what ensure left
FOUND_WORDS = {"inactive": "found inactive (deactivated by Autodesk)", "expired": "found expired",
               "partial": "found incomplete", "missing": "found missing"}
CHANGE_SERIES = (("copied", "copied", "#0072B2"), ("new_versions", "new versions", "#56B4E9"),
                 ("renamed", "renamed", "#009E73"), ("moved", "moved", "#E69F00"),
                 ("deleted", "deleted", "#CC79A7"), ("failed", "failed", "#D55E00"))

STYLE = """
:root{color-scheme:light;--ok:#1a7f37;--warn:#9a6700;--alert:#c62828;--muted:#5f6b7a;--line:#d8dee4}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:12px 20px;color:#1f2328;
 background:#fff}
h1{font-size:20px;margin:0}h2{font-size:17px;margin:18px 0 8px}h3{font-size:15px;margin:14px 0 6px}
h2 small{font-weight:normal;font-size:13px}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:6px 18px;border-bottom:1px solid var(--line);
 padding-bottom:8px}
header .meta{color:var(--muted)}
section.mirror p.meta{margin:0 0 6px}
a{color:#0969da}
small,.muted{color:var(--muted)}
.totals{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0}
.total{border:1px solid var(--line);border-radius:6px;padding:6px 14px;min-width:120px}
.total b{display:block;font-size:20px}
.total span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;background:#f6f8fa}
td.when{white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.error{max-width:360px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.badge{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;
 white-space:nowrap}
.badge.ok{background:var(--ok)}.badge.stale,.badge.warn{background:var(--warn)}
.badge.failing,.badge.alert,.badge.faults{background:var(--alert)}.badge.never{background:var(--muted)}
.badge.verified{background:var(--ok)}.badge.unverified{background:var(--warn)}
.verification{border:1px solid var(--line);border-radius:6px;padding:6px 12px;margin:8px 0}
.verification.verified{border-left:4px solid var(--ok)}.verification.faults{border-left:4px solid var(--alert)}
.verification.unverified{border-left:4px solid var(--warn)}
.verification p{margin:4px 0}.verification table.figures{width:auto}
td.fault{color:var(--alert);font-weight:600}td.verify{white-space:nowrap}
.notice{border-left:4px solid var(--warn);background:#fff8c5;padding:8px 12px;margin:10px 0}
.notice.alert{border-color:var(--alert);background:#ffebe9}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:12px}
.chart-box{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px}
.chart-box figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#eaeef2}svg .norun{fill:#c9d1d9}
svg text{font-size:10px;fill:#57606a}svg .ylabel{text-anchor:end}svg .xlabel{text-anchor:middle}
svg .total{font-size:9px;text-anchor:middle;fill:#1f2328}
.legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;margin-top:4px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
details summary{cursor:pointer;color:var(--muted);font-size:12px;margin-top:4px}
table.figures td,table.figures th{padding:2px 6px;font-size:12px}
.failures td.reason{width:40%;word-break:break-word}
.badge.live{background:#0969da}.badge.nightly{background:var(--muted)}
td.fresh,td.hook{white-space:nowrap}td.hook small,td.fresh small{display:block}
"""


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_dashboard(data: Dashboard) -> str:
    body = ["<header><h1>Autodesk mirror</h1>"
            f"<span class='meta'>Page generated {esc(_when(data.generated_at))} · "
            "<a href='dashboard.json'>JSON</a> · <a href='./'>Autodesk accounts</a></span></header>"]
    if data.problem:
        body.append(f"<p class='notice alert' id='problem'>{esc(data.problem)}</p>")
    elif not data.mirrors:
        body.append(_no_mirror_notice())
    if len(data.mirrors) > 1:
        body.append(_mirrors_overview(data.mirrors))
    body += [_mirror_section(m, index) for index, m in enumerate(data.mirrors)]
    body.append(_connections_section(data.connections))
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            "<link rel='icon' href='data:,'>"  # no favicon request: the page fetches nothing at all
            f"<title>Autodesk mirror</title><style>{STYLE}</style></head><body>{''.join(body)}</body></html>")


def _no_mirror_notice() -> str:
    return ("<div class='notice' id='no-mirror'><b>No mirror known yet.</b> The dashboard finds mirrors in "
            "the asset events of the mirror DAGs (the repository's <code>aps_mirror</code>, or any DAG "
            "made by <code>build_mirror_dag</code>), which their <code>summarize</code> task records after "
            "a successful run. Unpause and trigger a mirror DAG (DAGs &gt; its name &gt; Trigger). To show a "
            "mirror before that, create an event on its asset (named after the DAG, group "
            "<code>aps-mirror</code>) with the extra <code>{\"bucket\": ..., \"prefix\": ..., "
            "\"aws_conn_id\": ...}</code>, or tell the API server where mirrors are with "
            f"<code>{MIRRORS_ENV}=s3://bucket/prefix?aws_conn_id=aws_default&amp;dag_id=aps_mirror</code>."
            "</div>")


def _run_badge(run: dict[str, Any] | None, dag_id: str | None) -> str:
    """The DAG's latest run as a badge linking to it in Airflow's UI."""
    if not dag_id:
        return ("<span class='run muted'>no DAG recorded for this mirror (add <code>dag_id=</code> to its "
                f"entry in <code>{esc(MIRRORS_ENV)}</code> to see its runs)</span>")
    dag = f"<a target='_top' class='dag-id' href='../dags/{esc(quote(dag_id, safe=''))}'>{esc(dag_id)}</a>"
    if not run:
        return f"<span class='run' data-state=''>DAG {dag}: no run yet</span>"
    href = f"../dags/{esc(quote(dag_id, safe=''))}/runs/{esc(quote(run['run_id'], safe=''))}"
    return (f"<span class='run' data-state='{esc(run['state'])}' data-run-id='{esc(run['run_id'])}'>DAG {dag}, "
            f"last run <a target='_top' href='{href}'><span class='badge {RUN_BADGE.get(run['state'], 'never')}'>"
            f"{esc(run['state'])}</span></a> {esc(_when(run['end_date'] or run['start_date']))}</span>")


def _mirrors_overview(mirrors: list[MirrorStatus]) -> str:
    """One line per mirror, so a deployment of many shows its problems above the fold."""
    rows = []
    for index, mirror in enumerate(mirrors):
        totals = mirror.report.totals if mirror.report else {}
        run = mirror.latest_run
        state = (f"<span class='badge {RUN_BADGE.get(run['state'], 'never')}'>{esc(run['state'])}</span> "
                 f"{esc(_when(run['end_date'] or run['start_date']))}" if run else "–")
        failing = (f"{totals.get('failing_projects', 0):,}" if mirror.report
                   else "<span class='badge failing'>catalog unreadable</span>")
        verification = _verification_badge(mirror.report.verification) if mirror.report else "–"
        live = mirror.live.status if mirror.live else OFF
        rows.append(f"<tr class='mirror-row' data-uri='{esc(mirror.location.uri)}' "
                    f"data-dag-id='{esc(mirror.location.dag_id or '')}'>"
                    f"<td><a href='#mirror-{index}'>{esc(mirror.location.uri)}</a></td>"
                    f"<td><code>{esc(mirror.location.dag_id or '–')}</code></td><td class='when'>{state}</td>"
                    f"<td class='num'>{totals.get('files', 0):,}</td>"
                    f"<td class='num'>{esc(human_bytes(totals.get('bytes', 0)))}</td>"
                    f"<td class='num'>{failing}</td><td class='verification-status'>{verification}</td>"
                    f"<td class='live-status' data-live='{esc(live)}'><span class='badge {LIVE_BADGE[live]}'>"
                    f"{esc(live)}</span></td></tr>")
    return ("<h2>Mirrors</h2><table id='mirrors'><tr><th>Mirror</th><th>DAG</th><th>Last run</th>"
            "<th class='num'>Files</th><th class='num'>Size</th><th class='num'>Failing projects</th>"
            "<th>Verification</th><th title='Autodesk webhooks sync changes within a minute'>Live</th></tr>"
            f"{''.join(rows)}</table>")


def _mirror_section(mirror: MirrorStatus, index: int) -> str:
    loc = mirror.location
    where = (f"found in the latest asset event ({esc(_when(loc.last_event_at))})" if loc.last_event_at
             else f"from {esc(MIRRORS_ENV)}")
    head = (f"<section class='mirror' id='mirror-{index}' data-uri='{esc(loc.uri)}' "
            f"data-dag-id='{esc(loc.dag_id or '')}'><h2>{esc(loc.uri)} <small>{where}; "
            f"read with the connection <code>{esc(loc.aws_conn_id)}</code></small></h2>"
            f"<p class='meta'>{_run_badge(mirror.latest_run, loc.dag_id)}</p>{_live_line(mirror)}")
    if mirror.error or mirror.report is None:
        return (f"{head}<p class='notice alert mirror-error'>{esc(mirror.error)}<br>Check that the "
                f"<code>{esc(loc.aws_conn_id)}</code> connection exists and can read the bucket, and that "
                f"{esc(loc.dag_id or 'the mirror DAG')} has run since the catalog was introduced.</p></section>")
    report = mirror.report
    key = f"mirror-{index}"  # element ids stay unique however many mirrors the page shows
    return "".join([head, _totals(report, key), _verification(report.verification, key),
                    _projects_table(report.projects, key, mirror), _charts(report, key),
                    _failures(report, loc.dag_id, key), "</section>"])


def _live_line(mirror: MirrorStatus) -> str:
    """Is the mirror live (its live DAG deployed and unpaused), its events, its latest hook check."""
    live, dag_id = mirror.live, mirror.location.dag_id
    if live is None or not dag_id:
        return ""
    status = live.status
    if status == OFF and not mirror.shows_live:
        return (f"<p class='meta live muted' data-live='{OFF}'>Nightly only: no live DAG is deployed for this "
                f"mirror (<code>build_live_dag({esc(repr(dag_id))}, ...)</code> and the mirror DAG's "
                "<code>webhook_callback_url</code> make it live).</p>")
    dags = ", ".join(_dag_link(d["dag_id"]) for d in live.dags if not d["stale"]) or esc(live.asset)
    words = {LIVE: f"Autodesk's change events are synced by {dags}",
             PAUSED: f"{dags} is paused: deliveries are recorded but nothing syncs them until it is unpaused",
             OFF: f"no live DAG is deployed (scheduled on <code>{esc(live.asset)}</code>): deliveries get 503 "
                  "and Autodesk retries them for 48 hours"}[status]
    events = [e for e in live.projects.values() if e.last_event_at]
    latest = max((e.last_event_at for e in events), default=None)
    count = sum(e.events for e in events)
    seen = (f"; {count:,} event{'s' if count != 1 else ''} in {live.window_days} days, the last "
            f"<span title='{esc(latest)}'>{esc(_ago(mirror.age_hours(latest)))}</span>" if latest
            else f"; no event in {live.window_days} days")
    return (f"<p class='meta live' data-live='{esc(status)}'>Live: <span class='badge {LIVE_BADGE[status]}'>"
            f"{esc(status)}</span> {words}{seen}.{_hooks_words(mirror)}</p>")


def _hooks_words(mirror: MirrorStatus) -> str:
    summary = mirror.hooks_summary()
    if summary is None:
        return (" No webhook check recorded yet (the mirror DAG's <code>ensure_webhooks</code> task records "
                "one each run).")
    states = ", ".join(f"{n} {esc(state)}" for state, n in sorted(summary["states"].items()))
    checked = (f"<span class='hooks-checked' title='{esc(summary['checked_at'])}'>"
               f"{esc(_ago(summary['age_hours']))}</span>")
    text = f" Webhooks: {states or 'no project'}, checked {checked}"
    if summary["error"]:
        text += f" <span class='badge alert'>error</span> <span class='hooks-error'>{esc(summary['error'])}</span>"
    return text + "."


def _dag_link(dag_id: str) -> str:
    return f"<a target='_top' class='dag-id' href='../dags/{esc(quote(dag_id, safe=''))}'>{esc(dag_id)}</a>"


def _totals(report: CatalogReport, key: str) -> str:
    t = report.totals
    cards = [("hubs", "Hubs", f"{t.get('hubs', 0):,}"),
             ("projects", "Projects", f"{t.get('projects', 0):,}"),
             ("files", "Files mirrored", f"{t.get('files', 0):,}"),
             ("bytes", "Size", human_bytes(t.get("bytes", 0))),
             ("unavailable", "Not downloadable", f"{t.get('unavailable', 0):,}"),
             ("failing_projects", "Failing projects", f"{t.get('failing_projects', 0):,}")]
    return f"<div class='totals' id='{key}-totals'>" + "".join(
        f"<div class='total' data-key='{key}' data-value='{esc(t.get(key, 0))}' title='{esc(t.get(key, 0))}'>"
        f"<b>{esc(shown)}</b><span>{label}</span></div>" for key, label, shown in cards) + "</div>"


def _verification(v: Verification | None, key: str) -> str:
    """The latest `aps-mirror verify`: its badge, what it checked, each category's count, what to do."""
    if v is None:
        return ""
    head = (f"<div class='verification {esc(v.status)}' id='{key}-verification' data-status='{esc(v.status)}' "
            f"data-verification-id='{esc(v.verification_id or '')}'><p><b>Verification</b> "
            f"{_verification_badge(v)} {esc(v.summary)}</p>")
    advice = f"<p class='advice'>{code_spans(v.advice)}</p>" if v.advice else ""
    if not v.verification_id:
        return f"{head}{advice}</div>"
    scope = (f"<p class='muted scope'>Latest: <span title='{esc(v.started_at)}'>{esc(_when(v.started_at))}"
             f"</span> · {esc(verification_scope(v))}</p>")
    counts = {**v.counts, **({"unchecked": v.unchecked} if v.unchecked else {})}
    headers = "".join(f"<th class='num'>{esc(CATEGORY_LABEL.get(c, c))}</th>" for c in counts)
    cells = "".join(_count_cell(c, n) for c, n in counts.items())
    table = (f"<table class='figures counts' id='{key}-verification-counts'><tr>{headers}</tr>"
             f"<tr>{cells}</tr></table>")
    errors = ("<details><summary>What could not be checked</summary><ul>"
              + "".join(f"<li>{esc(plain_reason(e))}</li>" for e in v.errors) + "</ul></details>"
              if v.errors else "")
    return f"{head}{scope}{table}{errors}{advice}</div>"


def _count_cell(category: str, count: int | None) -> str:
    if count is None:  # outdated and not_mirrored need a walk of Autodesk
        return (f"<td class='num' data-category='{category}' data-value='' "
                "title='not checked: verify with --conn-id to compare with Autodesk'>–</td>")
    return (f"<td class='num{' fault' if count else ''}' data-category='{category}' data-value='{count}'>"
            f"{count:,}</td>")


def _verification_badge(v: Verification | None) -> str:
    if v is None:
        return "–"
    age = f" ({_age(v.age_days * 24)} old)" if v.age_days is not None else ""
    return f"<span class='badge {esc(v.status)}' title='{esc(v.summary)}{esc(age)}'>{esc(v.status)}</span>"


def code_spans(text: str | None) -> str:
    """`text` escaped, its `backticked` parts (commands, DAG ids) as <code>."""
    parts = esc(text).split("`")
    return "".join(f"<code>{part}</code>" if n % 2 else part for n, part in enumerate(parts))


def _projects_table(projects: list[ProjectStatus], key: str, mirror: MirrorStatus | None = None) -> str:
    ordered = sorted(projects, key=lambda p: (STATUS_ORDER.get(p.status, 9), p.hub_name, p.project_name))
    live = mirror is not None and mirror.shows_live
    rows = "".join(
        f"<tr class='project' data-project-id='{esc(p.project_id)}' data-status='{esc(p.status)}' "
        f"data-verify-faults='{esc(_faults_attr(p.verify_faults))}' "
        f"data-files='{p.files}' data-bytes='{p.bytes}' data-unavailable='{p.unavailable}'"
        f"{_live_attrs(mirror, p) if live else ''}>"
        f"<td>{esc(p.hub_name)}</td><td>{esc(p.project_name)}</td>"
        f"<td><span class='badge {esc(p.status)}'>{esc(STATUS_LABEL.get(p.status, p.status))}</span></td>"
        f"<td class='when' title='{esc(p.last_success_at)}'>{esc(_when(p.last_success_at) or 'never')}</td>"
        f"<td class='num'>{esc(_age(p.freshness_hours))}</td>"
        f"<td class='num'>{p.files:,}</td>"
        f"<td class='num' title='{p.bytes:,} bytes'>{esc(human_bytes(p.bytes))}</td>"
        f"<td class='num'>{p.unavailable:,}</td>"
        f"<td class='verify{' fault' if p.verify_faults else ''}'>"
        f"{esc(project_verification(p.verify_faults))}</td>"
        f"{_live_cells(mirror, p) if live else ''}"
        f"<td class='error' title='{esc(plain_reason(p.last_error))}'>{esc(plain_reason(p.last_error))}</td></tr>"
        for p in ordered)
    live_heads = ("<th title='the kind of run that synced the project last: live (Autodesk&#39;s events) or "
                  "nightly; the age of each'>Synced by</th>"
                  "<th title='its webhooks as the latest check left them; its last accepted event'>Webhooks</th>"
                  if live else "")
    columns = 12 if live else 10
    return (f"<h3>Projects</h3><table class='projects' id='{key}-projects'><tr><th>Hub</th><th>Project</th>"
            "<th>Status</th>"
            "<th>Last successful sync</th><th class='num'>Age</th><th class='num'>Files</th>"
            "<th class='num'>Size</th><th class='num'>Not downloadable</th>"
            "<th title='the faults the latest verification found in the project'>Verified</th>"
            f"{live_heads}<th>Last error</th></tr>"
            f"{rows or f'<tr><td colspan={columns}>No project in the catalog yet.</td></tr>'}</table>")


def _live_attrs(mirror: MirrorStatus, p: ProjectStatus) -> str:
    facts = mirror.project_live(p.project_id, p.last_success_at)
    hook, event = facts["hook"] or {}, facts["last_event"] or {}
    return (f" data-freshness='{esc(facts['freshness']['via'])}' data-hook-state='{esc(hook.get('state') or '')}'"
            f" data-last-event='{esc(event.get('event') or '')}'")


def _live_cells(mirror: MirrorStatus, p: ProjectStatus) -> str:
    """Synced by: live or nightly, and the age of each; Webhooks: the hook state and the last event."""
    facts = mirror.project_live(p.project_id, p.last_success_at)
    fresh = facts["freshness"]
    via = fresh["via"]
    ages = " · ".join(f"{kind} {esc(_ago(fresh[f'{kind}_age_hours']))}" for kind in ("live", "nightly")
                      if fresh[f"{kind}_success_at"])
    synced = (f"<td class='fresh' title='live: {esc(fresh['live_success_at'] or 'never')}; nightly: "
              f"{esc(fresh['nightly_success_at'] or 'never')}'>"
              + (f"<span class='badge {esc(via)}'>{esc(via)}</span><small>{ages}</small>" if via != "never" else "–")
              + "</td>")
    hook, event = facts["hook"], facts["last_event"]
    if hook:
        found = FOUND_WORDS.get(hook.get("found") or "")
        detail = "; ".join(x for x in (plain_reason(hook.get("error")), found and f"{found}: {hook.get('changes')}",
                                       f"checked {_when(hook.get('checked_at'))}") if x)
        state = (f"<span class='badge {HOOK_BADGE.get(hook['state'], 'warn')}' title='{esc(detail)}'>"
                 f"{esc(hook['state'])}</span>" + (" <small class='found'>was " + esc(hook["found"]) + "</small>"
                                                  if found else ""))
    else:
        state = "<span class='muted' title='no webhook check recorded for this project'>–</span>"
    last = (f"<small class='last-event' title='{esc(event['at'])}; {event['events']:,} in the window'>"
            f"{esc(event['event'] or 'event')} {esc(_ago(event['age_hours']))}</small>" if event
            else "<small class='last-event muted'>no event</small>")
    return f"{synced}<td class='hook'>{state}{last}</td>"


def _faults_attr(faults: dict[str, int] | None) -> str:
    """A project's faults for a data attribute: JSON; empty when not verified."""
    return "" if faults is None else json.dumps(faults, sort_keys=True)


def _charts(report: CatalogReport, key: str) -> str:
    days, by_day = _night_axis(report.nights, report.generated_at)

    def values(field: str) -> list[int | None]:
        return [getattr(by_day[d], field) if d in by_day else None for d in days]

    changes = bar_chart(f"{key}-chart-changes", "Changes per night", days,
                        [Series(label, color, values(field)) for field, label, color in CHANGE_SERIES])
    size = bar_chart(f"{key}-chart-bytes", "Bytes copied per night", days,
                     [Series("bytes copied", "#0072B2", values("bytes_copied"))], fmt=compact_bytes, base=1024)
    calls = [v if v is None else v - t for v, t in zip(values("api_calls"), values("throttled"))]
    api = bar_chart(f"{key}-chart-api", "Autodesk API calls per night", days,
                    [Series("throttled (429)", "#D55E00", values("throttled")),
                     Series("answered", "#56B4E9", [None if v is None else max(v, 0) for v in calls])])
    return f"<h3>Nights (up to {NIGHTS_SHOWN} days)</h3><div class='charts'>{changes}{size}{api}</div>"


def _night_axis(nights: list[NightlyChanges], generated_at: str | None) -> tuple[list[str], dict[str, Any]]:
    """Every day from the first night shown to today, so nights without a run show as gaps."""
    by_day = {n.day: n for n in nights}
    try:
        last = datetime.fromisoformat(str(generated_at)).date()
    except ValueError:
        last = max((date.fromisoformat(d) for d in by_day), default=date.today())
    last = max([last, *(date.fromisoformat(d) for d in by_day)])
    first = min((date.fromisoformat(d) for d in by_day), default=last)
    first = max(first, last - timedelta(days=NIGHTS_SHOWN - 1))
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)], by_day


def _failures(report: CatalogReport, dag_id: str | None, key: str) -> str:
    failures = report.failures[:FAILURES_SHOWN]
    if not failures:
        return (f"<h3>Failures</h3><p id='{key}-no-failures' class='muted no-failures'>"
                "No failure in the nights shown.</p>")
    rows = "".join(
        f"<tr class='failure' data-kind='{esc(f.kind)}'>"
        f"<td class='when' title='{esc(f.at)}'>{esc(_when(f.at))}</td>"
        f"<td>{esc(f.hub_name)} / {esc(f.project_name)}</td><td>{esc(f.path or '(whole project)')}</td>"
        f"<td class='reason'>{esc(plain_reason(f.reason))}</td>"
        f"<td>{esc(advice(f.reason or '', f.kind, dag_id))}</td></tr>"
        for f in failures)
    more = (f"<p class='muted'>{len(report.failures) - FAILURES_SHOWN} more in "
            "<a href='dashboard.json'>dashboard.json</a>.</p>" if len(report.failures) > FAILURES_SHOWN else "")
    return (f"<h3>Failures</h3><table class='failures' id='{key}-failures'><tr><th>When</th><th>Project</th>"
            f"<th>File</th><th>Reason</th><th>What to do</th></tr>{rows}</table>{more}")


def _connections_section(connections: list[ConnectionHealth]) -> str:
    rows = "".join(
        f"<tr class='connection' data-conn-id='{esc(c.conn_id)}' data-level='{esc(c.level)}'>"
        f"<td><code>{esc(c.conn_id)}</code></td><td>{esc(c.auth_mode)}</td><td>{esc(c.defined_in)}</td>"
        f"<td>{esc(c.account or '')}</td><td class='when'>{esc(_when(c.last_rotation))}</td>"
        f"<td><span class='badge {esc(c.level)}'>{esc(c.level)}</span> {esc(c.message)}</td></tr>"
        for c in connections)
    empty = "<tr><td colspan=6>No autodesk connection: add one in Admin &gt; Connections.</td></tr>"
    return ("<section id='connections'><h2>Autodesk connections</h2><table><tr><th>Connection</th>"
            "<th>Auth mode</th><th>Defined in</th><th>Account</th><th>Last token rotation</th><th>Health</th>"
            f"</tr>{rows or empty}</table></section>")


def compact_bytes(n: float) -> str:
    return human_bytes(n).replace(".0 ", " ")


def _when(iso: str | None) -> str:
    """'2026-05-01 03:12 UTC' from an ISO 8601 timestamp (as given when it does not parse)."""
    if not iso:
        return ""
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _ago(hours: float | None) -> str:
    """'4 min ago', '3 h ago', '2.5 d ago': live ages are minutes."""
    if hours is None:
        return "–"
    if hours < 1:
        return f"{max(hours * 60, 0):.0f} min ago"
    return f"{_age(hours)} ago"


def _age(hours: float | None) -> str:
    if hours is None:
        return "–"
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} d"

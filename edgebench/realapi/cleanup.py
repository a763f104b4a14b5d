"""Stopping every deployment a run created: by id, then a sweep by the run's tag.

    report = cleanup(Path("results/run"), host, token)   # also writes results/run/cleanup.json

First DELETE /v1/stop/{request_id} for every 202 the records hold, several at once (a
stop can take seconds to answer: 49 one after another took two minutes) but never more
than `rate_per_s` a second. A 200 means stopped; 404 and 410 mean already gone
(terminated, or never there); a 202 means the deployment is still starting and the stop
is queued, so it is asked again later until it ends. 429s honour Retry-After.

Then the sweep: a deployment can exist whose 202 never reached the run (an answer lost
after the platform accepted, a worker killed mid-request), and every deployment carries
the run's tag. GET /v1/deployments with a tag query finds those; POST
/v1/deployments/bulk-stop stops them (each by id, should the host not have bulk stop).
What is left when the time is up stays in cleanup.json (`left`; `found_by_tag` lists
what the sweep found); `edgebench cleanup RUN_DIR` retries exactly those.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from edgebench.manifest import read_manifest
from edgebench.realapi.token import authorization
from edgebench.records import read_records, run_logs
from edgebench.runfolder import run_tag as tag_of

REPORT = "cleanup.json"
DONE = ("stopped", "gone")
STOP_RATE_PER_S = 5.0  # the stop endpoint's limit is not published: stay well below 10/s
STOPS_AT_ONCE = 8  # stops waiting for their answers at the same time
RETRY_AFTER_S = 2.0
UNREACHABLE = "unreachable"  # the host refused the connection: nothing listens there
PAGE = 100
SWEEP_ATTEMPTS, SWEEP_RETRY_S = 6, 1.0  # each page of the sweep's list, and the wait between


def accepted_ids(folder: Path) -> list[str]:
    """accepted_ids are the request_ids of every deployment the run's 202s created."""
    ids = []
    for log in run_logs(folder, "requests", read_manifest(folder).get("run_id")):
        records, _ = read_records(log)
        ids += [r["request_id"] for r in records if r.get("status") == 202 and r.get("request_id")]
    return ids


def run_tag(folder: Path) -> str:
    """run_tag is the tag every deployment of the run carries (manifest.json's run_tag)."""
    return read_manifest(folder).get("run_tag") or tag_of(folder)


def cleanup(
    folder: Path,
    host: str,
    token: str,
    deadline_s: float = 300.0,
    rate_per_s: float = STOP_RATE_PER_S,
    clock=time.monotonic,
    sleep=time.sleep,
) -> dict:
    """cleanup stops what the run created and is not known to be done; writes cleanup.json."""
    states = _previous(folder)
    found = set(_previous_found(folder))
    ends = clock() + deadline_s
    with httpx.Client(base_url=host, headers=authorization(token), timeout=10.0) as client:
        stopper = Stopper(client, states, rate_per_s, clock, sleep)
        known = accepted_ids(folder)
        if not stopper.stop(known + sorted(found), ends):
            return _write(folder, host, states, found, unreachable=True)  # nothing answers
        swept = _sweep(client, run_tag(folder), set(known) | found, sleep)
        found |= set(swept or ())
        if swept and not _bulk_stop(client, run_tag(folder), states, swept):
            stopper.stop(swept, ends)
    return _write(folder, host, states, found, swept=swept is not None)


class Stopper:
    """Stopper asks for stops, STOPS_AT_ONCE at a time and at most rate_per_s a second,
    again for those still starting, until each is done or the time is up."""

    def __init__(self, client, states: dict[str, str], rate_per_s: float, clock, sleep):
        self.client, self.states = client, states
        self.gap_s, self.clock, self.sleep = 1 / rate_per_s, clock, sleep

    def stop(self, ids: list[str], ends: float) -> bool:
        """stop works through ids; False when the host does not answer at all."""
        todo = deque(rid for rid in dict.fromkeys(ids) if self.states.get(rid) not in DONE)
        not_before: dict[str, float] = {}
        running: dict[str, Future] = {}
        next_send = 0.0
        with ThreadPoolExecutor(STOPS_AT_ONCE) as pool:
            while (todo or running) and self.clock() < ends:
                for rid in [rid for rid, future in running.items() if future.done()]:
                    state, retry_in = running.pop(rid).result()
                    self.states[rid] = state
                    if state == UNREACHABLE:
                        return False
                    if state not in DONE:
                        not_before[rid] = self.clock() + retry_in
                        todo.append(rid)
                now = self.clock()
                due = [rid for rid in todo if not_before.get(rid, 0.0) <= now]
                if due and len(running) < STOPS_AT_ONCE and now >= next_send:
                    todo.remove(due[0])
                    running[due[0]] = pool.submit(_stop, self.client, due[0])
                    next_send = now + self.gap_s
                else:
                    self.sleep(min(self.gap_s, 0.02))
        return True


def _sweep(client: httpx.Client, tag: str, known: set[str], sleep) -> list[str] | None:
    """_sweep lists the deployments that carry the run's tag and that the records do not
    name: created, but their 202 never reached the run. None: the list could not be read."""
    query = orjson.dumps({"filters": [{"field": "tags", "operator": "eq", "value": tag}]})
    found, page = [], 1
    while True:
        body = _listed(client, {"query": query.decode(), "page": page, "limit": PAGE}, sleep)
        if body is None:
            return None
        data = body.get("data") or []
        found += [d["request_id"] for d in data if tag in (d.get("tags") or [])]
        if not (body.get("pagination") or {}).get("has_next") or not data:
            return [rid for rid in dict.fromkeys(found) if rid not in known]
        page += 1


def _listed(client: httpx.Client, params: dict, sleep) -> dict | None:
    """_listed is one page of GET /v1/deployments, asked again when its answer is lost, a
    429 or a 5xx (a sweep that gives up silently would leave servers running unseen)."""
    for _ in range(SWEEP_ATTEMPTS):
        try:
            response = client.get("/v1/deployments", params=params)
            if response.status_code == 200:
                return response.json()
            if response.status_code != 429 and response.status_code < 500:
                return None
            wait = _retry_after(response.headers.get("retry-after"))
        except (httpx.HTTPError, ValueError):
            wait = RETRY_AFTER_S
        sleep(min(wait, SWEEP_RETRY_S))
    return None


def _bulk_stop(client: httpx.Client, tag: str, states: dict[str, str], ids: list[str]) -> bool:
    """_bulk_stop stops the tagged deployments in one call; False when the host cannot."""
    body = {"filters": [{"field": "deployment_tags", "values": [tag], "filter_type": "any"}]}
    try:
        response = client.post("/v1/deployments/bulk-stop", json=body)
        processable = {p["request_id"] for p in response.json().get("processable", [])}
    except (httpx.HTTPError, ValueError, AttributeError, KeyError, TypeError):
        return False
    if response.status_code != 202:
        return False
    for rid in ids:
        states[rid] = "stopped" if rid in processable else states.get(rid, "gone")
    return True


def _stop(client: httpx.Client, request_id: str) -> tuple[str, float]:
    """_stop asks once: (state, seconds before asking again)."""
    try:
        response = client.delete(f"/v1/stop/{request_id}")
    except httpx.ConnectError:
        return UNREACHABLE, RETRY_AFTER_S
    except httpx.HTTPError as exc:
        return f"error: {type(exc).__name__}", RETRY_AFTER_S
    if response.status_code == 200:
        return "stopped", 0.0
    if response.status_code in (404, 410):
        return "gone", 0.0
    if response.status_code == 202:
        return "stopping", RETRY_AFTER_S
    if response.status_code == 429:
        return "rate_limited", _retry_after(response.headers.get("retry-after"))
    return f"error: HTTP {response.status_code}", RETRY_AFTER_S


def _retry_after(value: str | None) -> float:
    try:
        return min(60.0, float(value)) if value else RETRY_AFTER_S
    except ValueError:
        return RETRY_AFTER_S


def _previous(folder: Path) -> dict[str, str]:
    path = folder / REPORT
    if not path.exists():
        return {}
    try:
        return dict(orjson.loads(path.read_bytes()).get("deployments", {}))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return {}


def _previous_found(folder: Path) -> list[str]:
    try:
        return list(orjson.loads((folder / REPORT).read_bytes()).get("found_by_tag", []))
    except (OSError, orjson.JSONDecodeError, AttributeError, TypeError):
        return []


def _write(
    folder: Path,
    host: str,
    states: dict[str, str],
    found: set[str],
    unreachable: bool = False,
    swept: bool = False,
) -> dict:
    ids = dict.fromkeys([*accepted_ids(folder), *sorted(found)])
    left = sorted(rid for rid in ids if states.get(rid) not in DONE)
    report = {
        "host": host,
        "unreachable": unreachable,
        "swept": swept,  # False: the sweep by tag could not list the tagged deployments
        "finished_at": time.time(),
        "stopped": sum(state == "stopped" for state in states.values()),
        "gone": sum(state == "gone" for state in states.values()),
        "found_by_tag": sorted(found),
        "left": left,
        "deployments": states,
    }
    try:
        (folder / REPORT).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    except OSError as exc:  # a full disk: the stops happened all the same; the line says it
        report["unwritten"] = f"{REPORT} not written: {exc.strerror}"
    return report


def summary_line(report: dict, folder: Path, embedded: bool = False) -> str:
    """summary_line is cleanup's outcome in a line; embedded: the host was the run's emulator."""
    if report.get("unreachable") and embedded:
        return (
            f"cleanup: the run's embedded emulator ({report['host']}) ended with the run, and "
            "its deployments with it: nothing is left to stop"
        )
    if report.get("unreachable"):
        return (
            f"cleanup: {report['host']} does not answer (connection refused): nothing was "
            f"stopped, {len(report['left'])} left (edgebench cleanup {folder} retries them)"
        )
    line = f"cleanup: {report['stopped']} stopped, {report['gone']} already gone"
    if report.get("found_by_tag"):
        line += f" ({len(report['found_by_tag'])} found by the run's tag, their 202s never seen)"
    if report["left"]:
        line += f", {len(report['left'])} left (edgebench cleanup {folder} retries them)"
    if not report.get("swept"):
        line += (
            "; the sweep by the run's tag could not list the deployments, so any whose 202 "
            f"was lost are unknown (edgebench cleanup {folder} sweeps again)"
        )
    if report.get("unwritten"):
        line += f"; {report['unwritten']}"
    return line

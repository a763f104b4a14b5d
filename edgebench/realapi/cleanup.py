"""Stopping every deployment a run created: DELETE /v1/stop/{request_id}, paced, until each ends.

    report = cleanup(Path("results/run"), host, token)   # also writes results/run/cleanup.json

A 200 means stopped; 404 and 410 mean already gone (terminated, or never there);
a 202 means the deployment is still starting and the stop is queued, so it is asked
again later until it ends. 429s honour Retry-After. What is left when the time is
up stays in cleanup.json; `edgebench cleanup RUN_DIR` retries exactly those.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import httpx
import orjson

from edgebench.manifest import read_manifest
from edgebench.realapi.token import authorization
from edgebench.records import read_records, run_logs

REPORT = "cleanup.json"
DONE = ("stopped", "gone")
STOP_RATE_PER_S = 5.0  # the stop endpoint's limit is not published: stay well below 10/s
RETRY_AFTER_S = 2.0
UNREACHABLE = "unreachable"  # the host refused the connection: nothing listens there


def accepted_ids(folder: Path) -> list[str]:
    """accepted_ids are the request_ids of every deployment the run's 202s created."""
    ids = []
    for log in run_logs(folder, "requests", read_manifest(folder).get("run_id")):
        records, _ = read_records(log)
        ids += [r["request_id"] for r in records if r.get("status") == 202 and r.get("request_id")]
    return ids


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
    todo = deque(rid for rid in accepted_ids(folder) if states.get(rid) not in DONE)
    not_before: dict[str, float] = {}
    ends = clock() + deadline_s
    with httpx.Client(base_url=host, headers=authorization(token), timeout=10.0) as client:
        while todo and clock() < ends:
            request_id = todo.popleft()
            wait = not_before.get(request_id, 0.0) - clock()
            if wait > 0:
                todo.append(request_id)
                sleep(min(wait, 1 / rate_per_s))
                continue
            states[request_id], retry_in = _stop(client, request_id)
            if states[request_id] == UNREACHABLE:
                return _write(folder, host, states, unreachable=True)  # nothing answers there
            if states[request_id] not in DONE:
                not_before[request_id] = clock() + retry_in
                todo.append(request_id)
            sleep(1 / rate_per_s)
    return _write(folder, host, states)


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


def _write(folder: Path, host: str, states: dict[str, str], unreachable: bool = False) -> dict:
    left = sorted(rid for rid in accepted_ids(folder) if states.get(rid) not in DONE)
    report = {
        "host": host,
        "unreachable": unreachable,
        "finished_at": time.time(),
        "stopped": sum(state == "stopped" for state in states.values()),
        "gone": sum(state == "gone" for state in states.values()),
        "left": left,
        "deployments": states,
    }
    (folder / REPORT).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
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
    if report["left"]:
        line += f", {len(report['left'])} left (edgebench cleanup {folder} retries them)"
    return line

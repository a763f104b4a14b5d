"""The "Edgegap deploys" tab of Locust's web UI, and the report of the last run.

Live numbers come from each traffic process's edgebench.traffic.live.LiveCounts: with
workers they ride on Locust's own worker reports to the master; in a single
process they are taken every second. When a run stops, `edgebench analyze`
runs on its results folder and the report is served at /edgebench/report.
"""

from __future__ import annotations

import logging
import sys
import time
import urllib.request
from pathlib import Path

import gevent
from flask import Blueprint, Response, abort, request, send_file
from gevent import subprocess
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from edgebench.traffic.coordination import RunState
from edgebench.traffic.live import COLUMNS, RATE_WINDOW_S, LiveBoard

TAB = "edgebench"
REPORT_ROUTE = "/edgebench/report"
METRICS_ROUTE = "/metrics"  # served by `edgebench run` from the run's records
SERIES_ROUTE = "/edgebench/series"  # the live charts' points
STATIC_ROUTE = "/edgebench/static"
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "edgebench-charts.js": "text/javascript",
}
BOARD = LiveBoard()
LAST_RUN: dict[str, Path] = {}
NOTICE: dict[str, str] = {}  # why the last START was refused, until a run starts


def attach(environment, state: RunState) -> None:
    """attach hooks the live numbers into Locust, and the tab into its web UI if it has one."""
    if isinstance(environment.runner, WorkerRunner):

        @events.report_to_master.add_listener
        def _report(client_id, data, **_kwargs) -> None:
            if state.run is not None:
                data[TAB] = state.run.live.take()

    elif isinstance(environment.runner, MasterRunner):

        @events.worker_report.add_listener
        def _worker_report(client_id, data, **_kwargs) -> None:
            BOARD.merge(data.get(TAB), time.time(), client_id)

    else:
        gevent.spawn(_collect_forever, state)

    if environment.web_ui:
        _extend(environment, state)


def started(results_dir: Path) -> None:
    BOARD.reset()
    LAST_RUN["results"] = results_dir
    NOTICE.clear()


def refused(message: str) -> None:
    """refused shows in the UI why a START was refused (it is logged on the terminal too)."""
    NOTICE["text"] = f"The run was not started: {message}"


def stopped(environment, results_dir: Path) -> None:
    """stopped analyses the run in the background when a web UI will show the report."""
    if environment.web_ui:
        gevent.spawn(_analyse, results_dir)


def _analyse(results_dir: Path) -> None:
    command = [sys.executable, "-m", "edgebench.cli", "analyze", str(results_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if (results_dir / "report.html").exists():
        BOARD.report_url = REPORT_ROUTE
    else:
        logging.error("edgebench: the analysis failed: %s", done.stderr.strip()[-500:])


def _with_charts(response):
    """_with_charts adds the live charts' script to Locust's page: it draws them in the
    Edgegap deploys tab, under its table (Locust's own tabs take tables only)."""
    response.direct_passthrough = False
    page = response.get_data(as_text=True)
    tags = (
        f'<link rel="stylesheet" href="{STATIC_ROUTE}/uPlot.min.css">'
        f'<script src="{STATIC_ROUTE}/uPlot.iife.min.js"></script>'
        f'<script src="{STATIC_ROUTE}/edgebench-charts.js"></script>'
    )
    response.set_data(page.replace("</body>", tags + "</body>", 1))
    return response


def _collect_forever(state: RunState) -> None:
    """_collect_forever takes a single process's counts every second, as worker reports would."""
    while True:
        gevent.sleep(1.0)
        if state.run is not None:
            BOARD.merge(state.run.live.take(), time.time())


def _extend(environment, state: RunState) -> None:
    web_ui = environment.web_ui
    web_ui.template_args["extended_tabs"] = [{"title": "Edgegap deploys", "key": TAB}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB, "structure": [{"key": k, "title": t} for k, t in COLUMNS]}
    ]
    web_ui.template_args["extended_csv_files"] = [
        {"href": REPORT_ROUTE, "title": "edgebench report of the last run (HTML)"}
    ]
    blueprint = Blueprint("edgebench", __name__)

    @blueprint.route(REPORT_ROUTE)
    def report():
        results = LAST_RUN.get("results")
        page = results / "report.html" if results else None
        if page is None or not page.exists():
            abort(404, "No report yet: it is written when a run stops.")
        return send_file(page.resolve(), mimetype="text/html")

    @blueprint.route(SERIES_ROUTE)
    def series():
        limit = state.scenario.rate.limit if state.scenario else None
        results = LAST_RUN.get("results")
        return {
            "limit": limit,
            "window_s": RATE_WINDOW_S,
            "points": list(BOARD.series),
            "folder": str(results) if results else None,  # where this run's records go
            "report": BOARD.report_url or None,  # linked as soon as it is written
            "notice": NOTICE.get("text"),
        }

    @blueprint.route(f"{STATIC_ROUTE}/<name>")
    def static(name: str):
        if name not in STATIC_FILES:
            abort(404)
        return send_file(STATIC / name, mimetype=STATIC_FILES[name])

    @blueprint.route(METRICS_ROUTE)
    def metrics():
        port = environment.parsed_options.metrics_from_port
        if not port:
            abort(404, "No metrics: `edgebench run --web` makes them, from the run's records.")
        url = f"http://127.0.0.1:{port}{METRICS_ROUTE}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return Response(answer.read(), content_type=answer.headers["Content-Type"])

    web_ui.app.register_blueprint(blueprint)

    @web_ui.app.after_request
    def add_live_numbers(response):
        if request.path == "/" and response.mimetype == "text/html":
            return _with_charts(response)
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json() | {"extended_stats": [{"key": TAB, "data": BOARD.rows()}]}
        response.set_data(web_ui.app.json.dumps(payload))
        return response

"""The web UI in headless Chromium: start from the form, watch the tab, stop, open the report."""

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import orjson
import pytest
from playwright.sync_api import expect, sync_playwright

from .conftest import free_port
from .test_run import held_smoke, parsed, totals
from .test_server import EmulatorProcess
from .test_traffic import wait_for

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no chromium: `make browser` installs Debian's"
)
EDGEBENCH = [sys.executable, "-m", "edgebench.cli"]
# As the machine's notes advise: no sandbox as root, and no background calls to Google.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def ui(tmp_path):
    """web_ui is `edgebench run --web-wait` (runs started from the form) against an emulator."""
    port = free_port()
    with EmulatorProcess("--time-scale", "30") as emulator:
        command = [*EDGEBENCH, "run", "scenarios/smoke.toml", "--web-wait"]
        command += ["--host", emulator, "--web-port", str(port)]
        command += ["--results-dir", str(tmp_path / "run"), "--no-plots"]  # the UI's report draws
        output = (tmp_path / "edgebench.out").open("wb")
        run = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        output.close()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield SimpleNamespace(url=url, close=lambda: closed(run))
        closed(run)


def closed(run: subprocess.Popen) -> int:
    """closed ends `edgebench run --web-wait` as Ctrl-C does (Locust stops, the run ends by
    itself), once; its exit code."""
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
    return run.wait(timeout=60)


def number(text: str) -> float:
    return float(re.sub(r"[^0-9.]", "", text) or 0)


@needs_chromium
def test_a_run_started_from_the_form_shows_live_numbers_and_links_its_report(ui, tmp_path):
    web_ui = ui.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(web_ui)
        page.get_by_text("Custom parameters").click()
        page.locator("input[name=duration]").fill("30s")
        page.get_by_role("button", name="START").click()
        page.get_by_role("tab", name="Edgegap deploys").click()
        total = page.get_by_role("row").filter(has_text="All endpoints")
        expect(total).to_be_visible(timeout=15_000)
        cells = total.get_by_role("cell")
        expect(cells.nth(3)).to_have_text("100.0%")  # every request so far was a 202
        first = number(cells.nth(2).inner_text())
        # The ramp: the accepted rate climbs, and a time to ready comes from the webhooks.
        expect(cells.nth(2)).not_to_have_text(cells.nth(2).inner_text(), timeout=15_000)
        assert number(cells.nth(2).inner_text()) > first
        expect(cells.nth(8)).to_have_text(re.compile(r"\d s$"), timeout=15_000)
        # Under the table, the live charts: four, with points, and the points move.
        expect(page.locator("#edgebench-charts canvas")).to_have_count(4, timeout=10_000)
        points = "window.edgebenchCharts.rate.data[0].length"
        before = page.evaluate(points)
        page.wait_for_function(f"{points} > {before}", timeout=10_000)
        offered = page.evaluate("window.edgebenchCharts.rate.data[1]")
        assert max(v for v in offered if v is not None) > 0
        assert set(page.evaluate("window.edgebenchCharts.rate.data[3]")) == {40}  # the limit
        # The run's Prometheus metrics, on the web UI's port, count what the tab shows.
        samples = parsed(httpx.get(f"{web_ui}/metrics").text)
        assert totals(samples, "edgebench_requests_total", "outcome")["accepted"] > 0
        # The charts are the tab's only: another of Locust's tabs shows none of them.
        page.get_by_role("tab", name="Statistics").click()
        expect(page.locator("#edgebench-charts")).to_have_count(0, timeout=5_000)
        page.get_by_role("tab", name="Edgegap deploys").click()
        expect(page.locator("#edgebench-charts canvas")).to_have_count(4, timeout=10_000)
        about = page.locator("#edgebench-about")
        expect(about).to_have_text(f"This run's records: {tmp_path / 'run'}")
        page.get_by_role("button", name="STOP").click()
        # The report is linked as soon as it is written, without a reload.
        link = about.get_by_role("link", name="Report of the last run")
        expect(link).to_be_visible(timeout=60_000)
        report = httpx.get(f"{web_ui}/{link.get_attribute('href')}").text
        assert "<title>edgebench run: smoke" in report
        assert "Key numbers" in report
        # A second run from the form: a folder of its own, named in the tab.
        page.get_by_role("button", name="New").click()
        page.get_by_text("Custom parameters").click()
        page.locator("input[name=duration]").fill("20s")
        page.get_by_role("button", name="START").click()
        expect(about).to_have_text(re.compile(r"run-2$"), timeout=15_000)
        second = tmp_path / "run" / "run-2"
        wait_for(lambda: sum(p.stat().st_size for p in second.glob("requests-*")) > 0)
        page.get_by_role("button", name="STOP").click()
        browser.close()
    # Both runs were stopped before their schedules ended: neither is a pass.
    code = ui.close()
    said = (tmp_path / "edgebench.out").read_text()
    assert code == 3, said[-3000:]
    assert said.count("INCOMPLETE: the run stopped at") == 2, said[-3000:]
    assert (tmp_path / "run" / "report.html").exists()
    assert (second / "report.html").exists()
    # Once the UI closed, each run's manifest says what the user typed, not Locust's line.
    manifest = orjson.loads((second / "manifest.json").read_bytes())
    assert manifest["command_line"][:3] == ["edgebench", "run", "scenarios/smoke.toml"]
    assert manifest["scenario"]["duration_s"] == 20


def listening(port: int) -> set[str]:
    """listening are the local addresses (hex, as /proc/net/tcp has them) listening on port."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    fields = (row.split() for row in rows)
    return {f[1].split(":")[0] for f in fields if f[3] == "0A" and int(f[1][-4:], 16) == port}


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc/net/tcp (Linux)")
def test_web_starts_at_once_on_loopback_and_ends_with_its_verdict(tmp_path):
    port = free_port()
    with EmulatorProcess("--time-scale", "30") as emulator:
        held = held_smoke(tmp_path, 10, 2)  # sends from its first second: a short run
        command = [*EDGEBENCH, "run", str(held), "--web", "--web-linger", "8"]
        command += ["--host", emulator, "--web-port", str(port), "--no-plots"]
        command += ["--results-dir", str(tmp_path / "run")]
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not listening(port) and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.05)
            assert listening(port) == {"0100007F"}  # 127.0.0.1 only, not every interface
            # Once the run is over, its report is served while the UI lingers.
            report = f"http://127.0.0.1:{port}/edgebench/report"
            wait_for(lambda: httpx.get(report, timeout=2).status_code == 200, timeout=60)
            stdout, stderr = run.communicate(timeout=90)  # nobody presses start, nor stop
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 0, stderr[-2000:]
    assert "PASS" in stdout
    summary = (tmp_path / "run" / "summary.json").read_text()
    assert '"requests_total": 0' not in summary

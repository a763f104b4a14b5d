"""The child processes of `edgebench run`: Locust, and the embedded emulator.

Children run in their own process groups: a Ctrl-C reaches `edgebench run` only,
which asks Locust to stop (its records flush, the report is still written); a
second Ctrl-C ends everything at once. The emulator outlives Locust's last request.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, NoReturn

import click
import httpx
import orjson

from checks import Watch
from edgebench._errors import EdgebenchError
from edgebench.plan.overrides import RunSpec
from edgebench.plan.scenario import Scenario
from edgebench.records import READINGS_FILE, HostChanges, emulator_reading
from edgebench.runner.metrics import RunMetrics
from edgebench.runner.progress import Progress
from edgebench.runner.watch import Watcher

TICK_S = 0.25  # watched checks are judged this often; progress and readings once a second
TICKS_A_SECOND = 4
ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "locustfiles" / "edgegap.py"
GAVE_UP = "Gave up waiting for workers to connect"  # Locust's master, --expect-workers-max-wait


PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


def die_with_parent() -> None:
    """die_with_parent (a child's preexec_fn) has the child sent SIGTERM when the run that
    started it dies, even by SIGKILL: no emulator or Locust outlives its run. Linux only."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocustProcess:
    """LocustProcess is the Locust process of the run, in its own process group.

    Headless, its output goes to locust.log in the results folder (our progress
    line and report say what matters); with the web UI it stays on the terminal,
    where Locust prints the UI's address.
    """

    def __init__(self, command: list[str], log: Path, web: bool) -> None:
        self.log = log
        output = None if web else log.open("wb")
        # Our own interpreter running Locust on our locustfile: no outside input in the command.
        self.process = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT,
            stdout=output,
            stderr=output,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if output:
            output.close()

    def check(self) -> None:
        """check turns Locust refusing to run (bad input: exit code 2) into our error, and a
        master whose workers never came."""
        text = self._log_text()
        if self.process.returncode == 1 and GAVE_UP in text:
            raise EdgebenchError(
                "--expect-workers: not every worker connected within --expect-workers-max-wait; "
                "nothing was sent: start them with `edgebench worker --master-host THIS_HOST`"
            )
        if self.process.returncode != 2:
            return
        errors = [line for line in text.splitlines() if line.startswith("Error: ")]
        message = "\n".join(line.removeprefix("Error: ") for line in errors)
        see = f"; see {self.log}" if self.log.exists() else ""
        raise EdgebenchError(message or f"Locust stopped with exit code 2{see}")

    def last_error(self) -> str:
        """last_error is the last line of Locust's log that tells what went wrong."""
        lines = [line.strip() for line in self._log_text().splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line or "ERROR" in line]
        return (errors or lines or ["it printed nothing"])[-1][-300:]

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def interrupt(self) -> None:
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, number: int) -> None:
        if self.process.poll() is None:
            # The whole group: with --processes, the workers are Locust's children.
            os.killpg(self.process.pid, number)


def watch(
    locust: LocustProcess,
    progress: Progress,
    emulator: EmulatorProcess | None,
    watcher: Watcher | None = None,
    metrics: RunMetrics | None = None,
) -> Watch | None:
    """watch shows progress until Locust ends; Ctrl-C once stops it, twice aborts.

    A watched check that holds stops the traffic as Ctrl-C does; it is returned.
    """
    interrupts, ticks, aborted = 0, 0, None
    while locust.process.poll() is None:
        try:
            time.sleep(TICK_S)
            ticks += 1
            progress.read()
            if ticks % TICKS_A_SECOND == 0:
                progress.show()
                if metrics:
                    metrics.tick()
                if emulator:
                    emulator.sample()
            if watcher and aborted is None and (aborted := watcher.breached()):
                click.echo(f"\nedgebench: aborting: {aborted.text} held", err=True)
                locust.interrupt()
        except KeyboardInterrupt:
            interrupts += 1
            if interrupts == 1:
                click.echo("\nedgebench: stopping (Ctrl-C again to abort) ...", err=True)
                locust.interrupt()
            else:
                locust.kill()
                raise
    progress.finish()
    return aborted


def work(master_host: str, master_port: int, processes: int) -> NoReturn:
    """work is `edgebench worker`: it becomes Locust's worker on our locustfile.

    The process itself becomes Locust (exec): a signal to it (Ctrl-C, a pod's SIGTERM)
    reaches the worker, and nothing is left behind when it is killed.
    """
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
    command += ["--master-host", master_host, "--master-port", str(master_port)]
    command += ["--loglevel", "WARNING"]
    if processes > 1:
        command += ["--processes", str(processes)]
    click.echo(f"edgebench worker: joining the master at {master_host}:{master_port}", err=True)
    os.chdir(ROOT)
    os.execv(sys.executable, command)  # noqa: S606 (our interpreter, our locustfile)


class EmulatorProcess:
    """EmulatorProcess is `edgebench emulator` on a free loopback port with the scenario's world."""

    def __init__(self, spec: RunSpec, scenario: Scenario, time_scale: float, results: Path):
        self.spec, self.scenario = spec, scenario  # the spec resolved: what the emulator holds
        self.time_scale, self.results = time_scale, results
        self.url = ""
        self._log: IO[bytes] | None = None
        self._readings: IO[bytes] | None = None
        self._host_changes = HostChanges()
        self._client = httpx.Client(timeout=2.0)  # its base URL once the emulator said it

    def command(self) -> list[str]:
        """command is `edgebench emulator` for the run: the resolved run as one JSON text
        (its seed, world, match length and the organisation's limit come from it)."""
        command = [sys.executable, "-m", "edgebench.cli", "emulator", "--port", "0"]
        return [*command, "--time-scale", str(self.time_scale), "--run-spec", self.spec.dumps()]

    def __enter__(self) -> EmulatorProcess:
        self._log = (self.results / "emulator.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and command)
            self.command(),
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.url = self._read_url()
        self._client.base_url = httpx.URL(self.url)
        self._readings = (self.results / READINGS_FILE).open("ab")
        return self

    def _read_url(self) -> str:
        assert self.process.stdout is not None  # a pipe: Popen's stdout=PIPE above
        line = self.process.stdout.readline().decode().strip()  # its first line, or "" if it died
        if not line.startswith("http://"):
            self.__exit__()
            log = (self.results / "emulator.log").read_text(errors="replace").strip()
            last = log.splitlines()[-1] if log else "it printed nothing"
            raise EdgebenchError(
                f"the embedded emulator did not start: {last.removeprefix('Error: ')}"
            )
        return line

    def describe(self) -> dict:
        """describe is the emulator's set-up as it reports it (world, seed, time scale, limits)."""
        try:
            config = self._client.get("/_emulator/metrics").json()["config"]
        except (httpx.HTTPError, ValueError, KeyError):
            config = {}
        return {"embedded": True, "url": self.url} | config

    def preload(self, body: dict) -> int:
        """preload starts the emulator warm (POST /_emulator/preload): how many were placed."""
        try:
            answer = self._client.post("/_emulator/preload", json=body, timeout=60.0)
            answer.raise_for_status()
            return int(answer.json()["placed"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise EdgebenchError(f"the embedded emulator could not start warm: {exc}") from None

    def sample(self) -> None:
        """sample appends the emulator's active deployments now to emulator-metrics.jsonl."""
        try:
            metrics = self._client.get("/_emulator/metrics").json()
        except (httpx.HTTPError, ValueError):
            return
        active = metrics.get("active_deployments") or {}
        placements = metrics.get("fleet_placements") or {}
        if self._readings is None:
            return
        reading = emulator_reading(
            t=time.time(),
            active=active.get("total"),
            holding_capacity=active.get("holding_capacity"),
            deployments_created=metrics.get("deployments_created"),
            private_host_changes=self._host_changes(active.get("by_private_host") or {}),
            by_location=active.get("by_location") or {},
            fleet_private=placements.get("private", 0),
            fleet_cloud=placements.get("cloud", 0),
            allocation_failures=metrics.get("allocation_failures") or {},
        )
        try:
            self._readings.write(orjson.dumps(reading) + b"\n")
            self._readings.flush()
        except OSError:  # a full disk: the run's records stop it; the readings stop here
            readings, self._readings = self._readings, None
            with contextlib.suppress(OSError):
                readings.close()

    def __exit__(self, *_exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for handle in (self._readings, self._log, self.process.stdout, self._client):
            if handle:
                with contextlib.suppress(OSError):  # a full disk fails what was buffered
                    handle.close()

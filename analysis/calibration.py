"""Calibration: what runs measured, fitted, with how sure each fit is.

    fits = calibrate_runs([Path("results/real-1")], base_cached={"Frankfurt": True, ...})
    fits["boot_s"].median, fits["boot_s"].interval["median"], fits["boot_s"].verdict

From the records of runs against any host (the real API, a staging API, the emulator):

- time to ready, in platform seconds: a ready event's arrival minus the request's send and
  its answer's latency (the deployment starts when the request is worked, before the
  answer), times the run's time scale; split by where it ran: cached (a cached location, or
  a private host, which keeps the image) or not, and per location;
- the deploy request's latency (a 202's or 422's, ms), less the loopback transport the
  simulator adds to the world's api.latency_ms (TRANSPORT_MS), so that a simulation on the
  calibrated world answers as the runs were answered;
- the 422 share and causes; and, from a run that sent past the limit, which limiter shape
  its 429s fit (edgebench's emulator offers three: emulator._ratelimit).

Each fit is a lognormal by maximum likelihood (median = exp(mean of log x), sigma = the
standard deviation of log x), with a 90% bootstrap interval of each parameter, the
Kolmogorov-Smirnov distance to the data, and a verdict: "fits", "too few samples" (under
MIN_SAMPLES), or "does not fit" (a distance past Lilliefors' 5% point, 0.886 / sqrt(n)).
The analysis room: it reads folders and imports no edgebench.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis._errors import AnalysisError
from analysis.load import load_run

MIN_SAMPLES = 20  # fewer: the fit is given, its interval says how little it says
MIN_PER_LOCATION = 30  # fewer at a location: its share of the pooled fit stands for it
BOOTSTRAP = 1000
LILLIEFORS_5 = 0.886  # x 1/sqrt(n): the KS distance past which a fitted normal is refused
STEADY_BIN_S = 0.1
TRANSPORT_MS = 1.6  # edgebench simulate's default request latency: the loopback's median
SLIDING_TOLERANCE = 1  # admitted in a second past the limit still read as a strict window


@dataclass
class Fit:
    """Fit is a lognormal fitted to samples: its parameters, intervals, distance, verdict."""

    what: str
    samples: np.ndarray = field(repr=False)
    median: float = math.nan
    sigma: float = math.nan
    interval: dict[str, tuple[float, float]] = field(default_factory=dict)
    ks: float = math.nan
    verdict: str = ""

    @property
    def n(self) -> int:
        return len(self.samples)

    def facts(self) -> dict:
        return {
            "what": self.what,
            "n": self.n,
            "median": _round(self.median),
            "sigma": _round(self.sigma),
            "interval_90": {k: [_round(a), _round(b)] for k, (a, b) in self.interval.items()},
            "ks": _round(self.ks),
            "verdict": self.verdict,
        }


def fit_lognormal(what: str, samples: np.ndarray, seed: int = 0) -> Fit:
    """fit_lognormal fits samples (positive; others are left out) with its interval.

    >>> draws = np.random.default_rng(1).lognormal(np.log(4.2), 0.35, 400)  # a sample of 400
    >>> fit = fit_lognormal("boot", draws)
    >>> round(fit.median, 1), round(fit.sigma, 2), fit.verdict
    (4.1, 0.32, 'fits')
    """
    x = np.asarray(samples, dtype=float)
    x = x[np.isfinite(x) & (x > 0)]
    fit = Fit(what, x)
    if len(x) < 2:
        fit.verdict = "too few samples"
        return fit
    logs = np.log(x)
    fit.median, fit.sigma = float(np.exp(logs.mean())), float(logs.std(ddof=1))
    fit.interval = _bootstrap(logs, seed)
    fit.ks = ks_distance(x, fit.median, fit.sigma)
    if len(x) < MIN_SAMPLES:
        fit.verdict = "too few samples"
    elif fit.ks > LILLIEFORS_5 / math.sqrt(len(x)):
        fit.verdict = "does not fit"
    else:
        fit.verdict = "fits"
    return fit


def _bootstrap(logs: np.ndarray, seed: int) -> dict[str, tuple[float, float]]:
    """_bootstrap is the 5th and 95th percentiles of median and sigma over resamples."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(logs), size=(BOOTSTRAP, len(logs)))
    resampled = logs[picks]
    medians = np.exp(resampled.mean(axis=1))
    sigmas = resampled.std(axis=1, ddof=1)
    return {
        "median": (float(np.percentile(medians, 5)), float(np.percentile(medians, 95))),
        "sigma": (float(np.percentile(sigmas, 5)), float(np.percentile(sigmas, 95))),
    }


def ks_distance(x: np.ndarray, median: float, sigma: float) -> float:
    """ks_distance is the largest gap between the samples' CDF and the lognormal's."""
    if not sigma > 0:
        return math.nan
    ordered = np.sort(x)
    z = (np.log(ordered) - math.log(median)) / (sigma * math.sqrt(2))
    model = 0.5 * (1 + np.array([math.erf(v) for v in z]))
    n = len(ordered)
    above = np.arange(1, n + 1) / n - model
    below = model - np.arange(0, n) / n
    return float(max(above.max(), below.max()))


@dataclass
class RunMeasures:
    """RunMeasures is what one run folder measured, in platform seconds and milliseconds."""

    name: str
    ready: pd.DataFrame  # ttr_s, location, host
    latency_ms: np.ndarray
    sent: int
    refused_422: int
    causes: dict[str, int]
    admitted_t: np.ndarray  # when the API admitted each request it worked (its answer, s)
    limit: int | None
    rate_limited: int
    sources: set[str]


def measures(folder: Path) -> RunMeasures:
    """measures reads a run folder (AnalysisError: not a run folder)."""
    run = load_run(folder)
    requests, events = run.requests, run.events
    scale = float((run.manifest.get("emulator") or {}).get("time_scale") or 1.0)
    ready = _ready(requests, events, scale)
    outcome = requests["outcome"].astype(object)
    answered = outcome.isin(["accepted", "allocation_failure"])
    refused = requests[outcome.eq("allocation_failure")]
    causes = refused["cause"].astype(object).fillna("unknown").value_counts()
    # When the API admitted each: at its answer (a limiter counts a request when it works
    # it, after any delay in front; the answer's way back is small beside a second).
    admitted = (
        requests.loc[answered, "t_send"].to_numpy(dtype=float)
        + requests.loc[answered, "latency_ms"].to_numpy(dtype=float, na_value=0.0) / 1000
    )
    return RunMeasures(
        name=folder.name,
        ready=ready,
        latency_ms=requests.loc[answered, "latency_ms"].to_numpy(dtype=float),
        sent=int(requests["t_send"].notna().sum()),
        refused_422=len(refused),
        causes={str(k): int(v) for k, v in causes.items()},
        admitted_t=np.sort(admitted[np.isfinite(admitted)]),
        limit=(run.manifest.get("scenario") or {}).get("limit"),
        rate_limited=int(outcome.eq("rate_limited").sum()),
        sources=set(events["source"].astype(object).dropna()) if not events.empty else set(),
    )


def _ready(requests: pd.DataFrame, events: pd.DataFrame, scale: float) -> pd.DataFrame:
    """_ready is each deployment's time to ready in platform seconds, and where it ran."""
    if events.empty or "request_id" not in requests:
        return pd.DataFrame(columns=["ttr_s", "location", "host"])
    first = events[events["event"].astype(object).eq("ready")]
    first = first.sort_values("t_received").drop_duplicates("request_id")
    sent = requests.dropna(subset=["request_id"]).drop_duplicates("request_id")
    joined = first.merge(sent[["request_id", "t_send", "latency_ms"]], on="request_id", how="inner")
    started = joined["t_send"] + joined["latency_ms"].fillna(0) / 1000
    return pd.DataFrame(
        {
            "ttr_s": ((joined["t_received"] - started) * scale).to_numpy(dtype=float),
            "location": joined["location"].astype(object).to_numpy(),
            "host": joined["host"].astype(object).to_numpy(),
        }
    )


def boot_fits(ready: pd.DataFrame, cached_cities: set[str]) -> dict:
    """boot_fits are the time to ready fits: cached (a cached city or a private host) and
    not, and per location (its own fit from MIN_PER_LOCATION samples, else pooled)."""
    host = ready["host"].astype(object)
    private = host.notna() & host.ne("cloud")
    cached = private | ready["location"].astype(object).isin(cached_cities)
    fits = {
        "boot_s": fit_lognormal("time to ready, image not cached", ready.loc[~cached, "ttr_s"]),
        "cached_boot_s": fit_lognormal("time to ready, image cached", ready.loc[cached, "ttr_s"]),
    }
    where = ready["location"].astype(object).fillna("(not told)")
    per_location = {}
    for city, rows in ready.groupby(where, sort=True):
        own = len(rows) >= MIN_PER_LOCATION
        fit = fit_lognormal(f"time to ready at {city}", rows["ttr_s"]) if own else None
        per_location[str(city)] = {
            "n": len(rows),
            "cached": bool(str(city) in cached_cities),
            "fit": fit.facts() if fit else None,
            "pooled": not own,
        }
    return {"fits": fits, "per_location": per_location}


def limiter_shape(measured: list[RunMeasures]) -> dict:
    """limiter_shape says which limiter the runs' 429s fit, with the evidence (or why none
    can be told: no run sent past the limit)."""
    runs = [m for m in measured if m.rate_limited and m.limit and len(m.admitted_t)]
    if not runs:
        return {"shape": None, "why": "no run was answered 429: run one past the limit "
                "(exceed mode) to tell the limiter's shape"}  # fmt: skip
    run = max(runs, key=lambda m: m.rate_limited)
    limit, t = int(run.limit or 0), run.admitted_t
    most = int((np.searchsorted(t, t + 1.0, side="left") - np.arange(len(t))).max())
    evidence = {
        "run": run.name,
        "limit": limit,
        "most_admitted_in_any_second": most,
        "rate_limited": run.rate_limited,
    }
    if most <= limit + SLIDING_TOLERANCE:
        why = (
            f"at most {most} admitted in any second for a limit of {limit}: a strict window "
            "(one over is the senders' clock, not the server's)"
        )
        return {"shape": "sliding-window", "evidence": evidence, "why": why}
    steady = t[t > t[0] + 2.0]
    bins = (
        np.bincount(((steady - steady[0]) / STEADY_BIN_S).astype(int))
        if len(steady)
        else np.zeros(0)
    )
    spread = float(np.std(bins) / np.mean(bins)) if len(bins) and np.mean(bins) else math.nan
    evidence["steady_admits_cv_per_100ms"] = _round(spread)
    evidence["admitted_in_first_second"] = int((t < t[0] + 1.0).sum())
    if spread < 0.5:
        return {"shape": "token-bucket", "evidence": evidence,
                "why": f"{most} in a second past a limit of {limit}, then admits evenly spaced "
                       "(a bucket's burst, then its rate)"}  # fmt: skip
    return {"shape": "fixed-window", "evidence": evidence,
            "why": f"{most} in a second past a limit of {limit}, admits in clumps at each "
                   "window's start (a fixed window's boundary lets twice through)"}  # fmt: skip


def _latency_fit(measured_ms: np.ndarray) -> Fit:
    """_latency_fit is the API's own answer time: the measured less the transport, unless
    the measured is no more than a loopback's (then nothing is fitted, and it says so)."""
    what = "deploy answer time, less the transport (ms)"
    if len(measured_ms) and np.median(measured_ms) < 2 * TRANSPORT_MS:
        typical = float(np.median(measured_ms))
        why = f"nothing beyond the transport: a median of {typical:.2g} ms, a loopback's"
        return Fit(what, np.zeros(0), verdict=why)
    return fit_lognormal(what, measured_ms - TRANSPORT_MS)


def calibrate_runs(folders: list[Path], cached_cities: set[str]) -> dict:
    """calibrate_runs is calibration.json's facts (without the world file)."""
    measured = [measures(folder) for folder in folders]
    ready = pd.concat([m.ready for m in measured], ignore_index=True)
    if ready.empty:
        names = ", ".join(str(folder) for folder in folders)
        raise AnalysisError(
            f"{names}: no readiness data (no ready event joins a request): calibrate needs a "
            "run with webhooks or status polling ([requests] webhooks = true or poll_status)"
        )
    boots = boot_fits(ready, cached_cities)
    # The world's api.latency_ms is what the API adds: the simulator puts its own transport
    # (TRANSPORT_MS, the emulator's loopback) on top, so that much comes off the samples.
    measured_ms = np.concatenate([m.latency_ms for m in measured])
    latency = _latency_fit(measured_ms[np.isfinite(measured_ms)])
    sent = sum(m.sent for m in measured)
    refused = sum(m.refused_422 for m in measured)
    causes: dict[str, int] = {}
    for m in measured:
        for cause, n in m.causes.items():
            causes[cause] = causes.get(cause, 0) + n
    return {
        "runs": [m.name for m in measured],
        "fits": {**boots["fits"], "latency_ms": latency},
        "per_location": boots["per_location"],
        "share_422": round(refused / sent, 6) if sent else None,
        "causes_422": causes,
        "limiter": limiter_shape(measured),
        "ready_sources": sorted(set().union(*(m.sources for m in measured))),
        "terminate_s": "not measured: no run times its stops (cleanup asks, it does not wait)",
    }


def _round(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)

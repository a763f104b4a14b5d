"""calibration.html: each fit's observed CDF against the fitted lognormal, and the verdicts."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np

from analysis.calibration import Fit


def write_calibration_report(report: dict, fits: dict[str, Fit], folder: Path) -> Path:
    """write_calibration_report draws calibration.png and writes calibration.html."""
    png = _draw(fits, folder / "calibration.png")
    page = folder / "calibration.html"
    page.write_text(_page(report, png))
    return page


def _draw(fits: dict[str, Fit], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(fits), figsize=(5 * len(fits), 3.6), squeeze=False)
    for ax, (name, fit) in zip(axes[0], fits.items(), strict=True):
        ax.set_title(f"{name} ({fit.n} samples): {fit.verdict}", fontsize=9)
        if fit.n:
            ordered = np.sort(fit.samples)
            ax.step(ordered, np.arange(1, fit.n + 1) / fit.n, where="post", label="observed")
        if fit.n and fit.sigma > 0:
            x = np.linspace(max(1e-9, ordered[0] * 0.8), ordered[-1] * 1.2, 200)
            z = (np.log(x) - math.log(fit.median)) / (fit.sigma * math.sqrt(2))
            model = 0.5 * (1 + np.array([math.erf(v) for v in z]))
            ax.plot(x, model, label=f"lognormal {fit.median:.3g}, sigma {fit.sigma:.2f}")
        ax.set_xlabel("ms" if name == "latency_ms" else "seconds (platform)")
        ax.set_ylabel("share at or below")
        ax.grid(alpha=0.3)
        if fit.n:
            ax.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path


def _page(report: dict, png: Path) -> str:
    rows = "".join(_fit_row(name, fit) for name, fit in report["fits"].items())
    places = "".join(_place_row(city, p) for city, p in report["per_location"].items())
    limiter = report["limiter"]
    evidence = html.escape(str(limiter.get("evidence", "")))
    image = base64.b64encode(png.read_bytes()).decode()
    share = report["share_422"]
    return f"""<!doctype html>
<meta charset="utf-8">
<title>edgebench calibrate</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
td,th{{padding:.2em .6em;text-align:right}}</style>
<h1>edgebench calibrate: {html.escape(", ".join(report["runs"]))}</h1>
<p>World written: {html.escape(report["world_file"])}
(base: {html.escape(report["base_world"])}), {html.escape(report["date"])}.
Readiness told by: {html.escape(", ".join(report["ready_sources"]))}.</p>
<table><tr><th>fit</th><th>samples</th><th>median</th><th>90% interval</th><th>sigma</th>
<th>90% interval</th><th>KS</th><th>verdict</th></tr>{rows}</table>
<img alt="observed against fitted" src="data:image/png;base64,{image}">
<h2>Per location</h2>
<table><tr><th>location</th><th>samples</th><th>cached</th><th>median</th></tr>{places}</table>
<h2>Limiter</h2><p>{html.escape(str(limiter.get("shape") or "not told"))}:
{html.escape(limiter["why"])}.
{evidence}</p>
<h2>Refusals</h2><p>422 share {"" if share is None else f"{share:.2%}"};
causes {html.escape(str(report["causes_422"] or "none"))}.
Stop to terminated: {html.escape(report["terminate_s"])}.</p>
"""


def _fit_row(name: str, fit: dict) -> str:
    def pair(key: str) -> str:
        low, high = fit["interval_90"].get(key, (None, None))
        return "" if low is None else f"{low:.4g} - {high:.4g}"

    def num(value) -> str:
        return "" if value is None else f"{value:.4g}"

    cells = [name, fit["n"], num(fit["median"]), pair("median"), num(fit["sigma"]),
             pair("sigma"), num(fit["ks"]), fit["verdict"]]  # fmt: skip
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _place_row(city: str, place: dict) -> str:
    told = "pooled (too few for its own fit)" if place["pooled"] else _median(place["fit"])
    cells = [city, place["n"], "yes" if place["cached"] else "no", told]
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _median(fit: dict | None) -> str:
    return "" if not fit or fit["median"] is None else f"{fit['median']:.4g} ({fit['verdict']})"

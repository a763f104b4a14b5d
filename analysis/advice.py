"""advice.html: the answers `edgebench advise` came to, and the probes behind them.

One panel per knob: for a fleet's hosts, the overflow (its regions' and the run's) and the
cost a day against the host count; for the limit, the players' p99 wait and the unserved
share against the limit. Each probe is a point (filled: every check held), the answer a
vertical line. The analysis room reads advice.json only; it imports no edgebench.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

LIMIT = "limit"


def write_advice_report(advice: dict, folder: Path) -> Path:
    """write_advice_report draws advice.png and writes advice.html; returns the page."""
    png = _draw(advice, folder / "advice.png")
    page = folder / "advice.html"
    page.write_text(_page(advice, png))
    return page


def _series(advice: dict, knob: str) -> list[dict]:
    """_series are the probes that moved only this knob from the answers (else every probe
    that set it), in the knob's order."""
    answers = advice["answers"]
    others = {k: v for k, v in answers.items() if k != knob}
    alone = [
        p for p in advice["probes"]
        if all(p["point"].get(k) == v for k, v in others.items()) and knob in p["point"]
    ]  # fmt: skip
    probes = alone if len(alone) > 1 else [p for p in advice["probes"] if knob in p["point"]]
    return sorted(probes, key=lambda p: p["point"][knob])


def _metrics(knob: str, probes: list[dict]) -> list[str]:
    if knob == LIMIT:
        return ["wait_p99_s", "share_unserved"]
    regional = sorted({k for p in probes for k in p if k.startswith("share_overflow:")})
    return ["share_overflow", *regional, "cost_per_day"]


def _draw(advice: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    knobs = list(advice["answers"])
    figure, axes = pyplot.subplots(len(knobs), 2, figsize=(11, 3.2 * len(knobs)), squeeze=False)
    for row, knob in zip(axes, knobs, strict=True):
        probes = _series(advice, knob)
        names = _metrics(knob, probes)
        curves = advice.get("curves") or {}
        if knob == LIMIT and curves.get(LIMIT):  # every limit, from one simulation
            _limit_panels(row, curves[LIMIT], probes, advice)
            continue
        if curve := curves.get(knob.partition(":")[2]):  # every host count, likewise
            _curve_panels(row, knob, curve, advice)
            continue
        _panel(row[0], knob, probes, names[:-1] or names, advice)
        _panel(row[1], knob, probes, names[-1:], advice)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path


def _panel(ax, knob: str, probes: list[dict], names: list[str], advice: dict) -> None:
    for name in names:
        shown = [p for p in probes if p.get(name) is not None]
        x = [p["point"][knob] for p in shown]
        ax.plot(x, [p[name] for p in shown], lw=1, label=name)
        for passed, marker in ((True, "o"), (False, "x")):
            points = [p for p in shown if p["passed"] is passed]
            colour = "tab:green" if passed else "tab:red"
            x, y = [p["point"][knob] for p in points], [p[name] for p in points]
            ax.scatter(x, y, marker=marker, color=colour, zorder=3)
    if knob in advice["answers"]:
        ax.axvline(advice["answers"][knob], color="tab:blue", lw=1.2, label="answer")
    label = "organisation limit (requests/s)" if knob == LIMIT else f"hosts in {knob[6:]}"
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _curve_panels(row, knob: str, curve: dict, advice: dict) -> None:
    """_curve_panels draw a fleet's overflow shares and cost a day against every host count
    (one simulation's), the checks' bounds, the chosen count and the formulas'."""
    hosts = curve["hosts"]
    left, right = row
    left.plot(hosts, curve["overflow_share"], lw=1.4, color="black", label="fleet overflow")
    for region, shares in curve["by_region"].items():
        left.plot(hosts, shares, lw=1, label=f"overflow: {region}")
    own = {"share_overflow", *(f"share_overflow:{region}" for region in curve["by_region"])}
    for metric, bound in _bounds(advice["checks"]):
        if metric in own:
            left.axhline(bound, color="tab:red", ls=":", lw=1, label=f"check: {metric} < {bound:g}")
    left.set_ylabel("share of fleet deploys to the cloud")
    costs = [(n, c) for n, c in zip(hosts, curve["cost_per_day"], strict=True) if c is not None]
    if costs:
        right.plot(*zip(*costs, strict=True), lw=1.4, color="tab:purple", label="cost a day")
        right.set_ylabel("cost a day (the scenario's prices)")
    else:
        right.text(0.5, 0.5, "no prices: no cost curve", ha="center", va="center",
                   transform=right.transAxes)  # fmt: skip
    for ax in row:
        ax.axvline(curve["chosen"], color="tab:green", lw=1.6, label=f"answer {curve['chosen']}")
        ax.axvline(curve["formula"], color="grey", ls="--", lw=1, label="Erlang B's start")
        ax.set_xlabel(f"hosts in {knob[6:]} (all {curve['simulated_hosts']} from one simulation)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")


def _limit_panels(row, curve: dict, probes: list[dict], advice: dict) -> None:
    """_limit_panels draw the players' p99 wait and the unserved share against every limit
    (one simulation's queue), the simulated probes on them, the checks' bounds, the answer
    and the formula's start."""
    limits = curve["limits"]
    left, right = row
    waits = [(n, w) for n, w in zip(limits, curve["wait_p99_s"], strict=True) if w is not None]
    if waits:
        left.plot(*zip(*waits, strict=True), lw=1.4, color="black", label="p99 wait (one pass)")
    right.plot(limits, curve["share_unserved"], lw=1.4, color="black", label="unserved (one pass)")
    for ax, name in ((left, "wait_p99_s"), (right, "share_unserved")):
        for passed, marker, colour in ((True, "o", "tab:green"), (False, "x", "tab:red")):
            shown = [p for p in probes if p["passed"] is passed and p.get(name) is not None]
            ax.scatter([p["point"][LIMIT] for p in shown], [p[name] for p in shown],
                       marker=marker, color=colour, zorder=3,
                       label=f"simulated: {'pass' if passed else 'fail'}")  # fmt: skip
        for metric, bound in _bounds(advice["checks"]):
            if metric == name:
                ax.axhline(bound, color="tab:red", ls=":", lw=1, label=f"check: < {bound:g}")
        ax.axvline(curve["chosen"], color="tab:green", lw=1.6, label=f"answer {curve['chosen']}/s")
        ax.axvline(curve["formula"], color="grey", ls="--", lw=1, label="the queue walk's start")
        ax.set_xlabel("organisation limit (requests/s)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    left.set_ylabel("players' p99 wait (s)")
    right.set_ylabel("share of matches unserved")


def _bounds(checks: list[str]) -> list[tuple[str, float]]:
    """_bounds are the checks `metric < number` (or <=): what a curve must stay under."""
    bounds = []
    for text in checks:
        words = text.split()
        if len(words) == 3 and words[1] in ("<", "<="):
            try:
                bounds.append((words[0], float(words[2])))
            except ValueError:
                continue
    return bounds


def _page(advice: dict, png: Path) -> str:
    keys = ["number", "point", "passed", *sorted({k for p in advice["probes"] for k in p} - {
        "number", "point", "passed", "folder"})]  # fmt: skip
    heads = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(p.get(k)))}</td>" for k in keys) + "</tr>"
        for p in advice["probes"]
    )
    instant = advice["instant"]
    answers = ", ".join(f"{k} {v:g}" for k, v in advice["answers"].items())
    verdict = "meets every check" if advice["met"] else "does NOT meet every check"
    image = base64.b64encode(png.read_bytes()).decode()
    name = html.escape(advice["scenario"]["name"])
    return f"""<!doctype html>
<meta charset="utf-8">
<title>edgebench advise: {name}</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
td,th{{padding:.2em .5em;text-align:right;font-size:90%}}</style>
<h1>edgebench advise: {name}</h1>
<p>Checks: {html.escape(", ".join(advice["checks"]))}.
<strong>Answer: {html.escape(answers)}</strong> ({verdict}; {len(advice["probes"])} probes,
{advice["took_s"]:g} s).</p>
<p>Started from the formulas: limit {instant["limit"]}/s ({html.escape(instant["limit_formula"])},
waits within {instant["wait_bound_s"]:g} s); hosts {html.escape(_cell(instant["hosts"]))}
({html.escape(instant["hosts_formula"])}, {instant["overflow"]:.1%} overflow).</p>
<img alt="the probes" src="data:image/png;base64,{image}">
<table><tr>{heads}</tr>{rows}</table>
"""


def _cell(value: object) -> str:
    """_cell is a table cell: plain numbers with separators (a cost of 10,820.50, not
    1.082e+04), small shares to four figures."""
    if isinstance(value, float):
        if value.is_integer():
            return f"{value:,.0f}"
        return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    return "" if value is None else str(value)

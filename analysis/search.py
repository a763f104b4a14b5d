"""search.html: the knee a search found, drawn from its search.json.

One panel per metric a check names (and the 422/429 shares and accepted rate): each probe
as a point (filled: every check held), the checks as horizontal lines, the answer as a
vertical line. The analysis room reads the search's JSON only; it imports no edgebench.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from checks import parse

SHOWN = ("share_422", "share_429", "accepted_rate_per_s")


def write_search_report(search: dict, folder: Path) -> Path:
    """write_search_report draws search.png and writes search.html; returns the page's path."""
    png = _draw(search, folder / "search.png")
    page = folder / "search.html"
    page.write_text(_page(search, png))
    return page


def _panels(search: dict) -> list[tuple[str, list[dict]]]:
    """_panels are the metrics to draw, each with the checks on it."""
    names: list[str] = []
    checks: dict[str, list[dict]] = {}
    for check in parse(search["checks"]):
        checks.setdefault(check.metric, []).append({"number": check.number, "text": check.text})
        if check.metric not in names:
            names.append(check.metric)
    names += [name for name in SHOWN if name not in names]
    return [(name, checks.get(name, [])) for name in names]


def _x(search: dict, probe: dict) -> float:
    return probe.get("peak_rate_per_s", probe["value"])


def _draw(search: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    panels = _panels(search)
    figure, axes = pyplot.subplots(len(panels), 1, figsize=(8, 2.4 * len(panels)), sharex=True)
    axes = axes if len(panels) > 1 else [axes]
    probes = sorted(search["probes"], key=lambda p: _x(search, p))
    answer = next((p for p in probes if p["value"] == search["answer"]), None)
    for ax, (metric, checks) in zip(axes, panels, strict=True):
        shown = [p for p in probes if p.get(metric) is not None]
        ax.plot([_x(search, p) for p in shown], [p[metric] for p in shown], color="0.6", lw=1)
        for passed, marker in ((True, "o"), (False, "x")):
            points = [p for p in shown if p["passed"] is passed]
            ax.scatter([_x(search, p) for p in points], [p[metric] for p in points], marker=marker,
                       color="tab:green" if passed else "tab:red", zorder=3,
                       label="every check held" if passed else "a check failed")  # fmt: skip
        for check in checks:
            ax.axhline(check["number"], color="tab:orange", ls="--", lw=1, label=check["text"])
        if answer is not None:
            ax.axvline(_x(search, answer), color="tab:blue", lw=1.2, label="answer")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    rate = search["varied"]["kind"] == "rate"
    axes[-1].set_xlabel("peak offered rate (/s)" if rate else search["varied"]["label"])
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path


def _page(search: dict, png: Path) -> str:
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(_cell(probe.get(key)))}</td>"
            for key in ("value", "peak_rate_per_s", "passed", *(m for m, _ in _panels(search)))
        )
        + "</tr>"
        for probe in search["probes"]
    )
    heads = "".join(
        f"<th>{html.escape(h)}</th>"
        for h in ("value", "peak rate /s", "passed", *(m for m, _ in _panels(search)))
    )
    image = base64.b64encode(png.read_bytes()).decode()
    answer = "none" if search["answer"] is None else f"{search['answer']:g}"
    return f"""<!doctype html>
<meta charset="utf-8">
<title>edgebench search: {html.escape(search["scenario"]["name"])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.2em .6em;text-align:right}}</style>
<h1>edgebench search: {html.escape(search["scenario"]["name"])} ({search["mode"]})</h1>
<p>Varied: {html.escape(search["varied"]["label"])};
checks: {html.escape(", ".join(search["checks"]))}; precision {search["precision"]:.0%}.
<strong>Answer: {answer}</strong>
{f"({search['answer_rate_per_s']:g}/s at the peak)" if "answer_rate_per_s" in search else ""}</p>
<img alt="the knee" src="data:image/png;base64,{image}">
<table><tr>{heads}</tr>{rows}</table>
"""


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)

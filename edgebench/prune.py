"""`edgebench prune`: results that do not pile up. The newest runs stay whole; the older keep
their evidence (manifest, summary, report, plots) and lose their records.

    report = prune(Path("results"), keep=5, dry_run=False)   # what was (or would be) freed

A run folder is one with a manifest.json; a search's or advice's folder (search.json,
advice.json) counts as one, with its probes inside. A pruned folder's manifest says when
(`pruned_at`), so `edgebench analyze` says why it cannot analyse it again; `edgebench
history` and `compare` of summaries still read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgebench._errors import EdgebenchError
from edgebench.manifest import MANIFEST, read_manifest, utc, write_manifest
from edgebench.records import RECORD_FILES

MARKS = (MANIFEST, "search.json", "advice.json")


@dataclass
class Pruned:
    """Pruned is what a prune did (or, dry, would do)."""

    kept: list[Path] = field(default_factory=list)
    pruned: list[Path] = field(default_factory=list)
    freed_bytes: int = 0


def prune(results: Path, keep: int, dry_run: bool, now: float) -> Pruned:
    """prune keeps the `keep` newest folders of results whole and removes the records of
    the others (and of every probe inside them)."""
    if not results.is_dir():
        raise EdgebenchError(f"{results}: no such folder; pass a results folder, e.g. results")
    folders = sorted(_folders(results), key=_started, reverse=True)
    report = Pruned(kept=folders[:keep])
    for folder in folders[keep:]:
        files = [path for run in (folder, *_inside(folder)) for path in _records(run)]
        if not files:
            continue
        report.pruned.append(folder)
        report.freed_bytes += sum(path.stat().st_size for path in files)
        if not dry_run:
            for path in files:
                path.unlink()
            for run in (folder, *_inside(folder)):
                if (run / MANIFEST).exists():
                    write_manifest(run, pruned_at=utc(now))
    return report


def _folders(results: Path) -> list[Path]:
    return [p for p in results.iterdir() if p.is_dir() and any((p / m).exists() for m in MARKS)]


def _inside(folder: Path) -> list[Path]:
    """_inside are the run folders within a search's or advice's folder (its probes)."""
    return [path.parent for path in folder.rglob(MANIFEST) if path.parent != folder]


def _records(folder: Path) -> list[Path]:
    return [path for pattern in RECORD_FILES for path in folder.glob(pattern) if path.is_file()]


def _started(folder: Path) -> float:
    """_started is when a folder's run began (its manifest's epoch), else when it changed."""
    epoch = read_manifest(folder).get("epoch")
    return float(epoch) if isinstance(epoch, int | float) else folder.stat().st_mtime


def summary_line(report: Pruned, dry_run: bool) -> str:
    freed = report.freed_bytes / 1e6
    verb = "would free" if dry_run else "freed"
    return (
        f"{len(report.pruned)} folder(s) pruned of their records: {verb} {freed:,.1f} MB; "
        f"{len(report.kept)} newest kept whole"
    )

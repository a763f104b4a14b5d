"""manifest.json: what a run was (scenario, target, versions, times), never any secret."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import orjson

from edgebench import __version__

MANIFEST = "manifest.json"


def git_commit(directory: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, as a user runs it)
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def write_manifest(results_dir: Path, **fields: object) -> dict:
    """write_manifest merges fields into results_dir/manifest.json and returns it all."""
    path = results_dir / MANIFEST
    manifest = orjson.loads(path.read_bytes()) if path.exists() else {}
    manifest |= fields
    results_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    temporary.replace(path)
    return manifest


def run_facts(scenario, host: str, token_set: bool, workers: int, expected: int) -> dict:
    """run_facts is what the manifest records when a run starts."""
    import locust

    return {
        "scenario": {
            "name": scenario.name,
            "path": scenario.source,
            "sha256": scenario.digest,
            "seed": scenario.seed,
            "mode": scenario.rate.mode,
            "limit": scenario.rate.limit,
            "duration_s": scenario.duration_s,
            "expected_requests": expected,
            "thresholds": scenario.thresholds,
        },
        "target": {"host": host, "token_set": token_set},
        "versions": {
            "edgebench": __version__,
            "locust": locust.__version__,
            "python": platform.python_version(),
        },
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "command_line": sys.argv,
        "workers": workers,
        "started_at": time.time(),
    }

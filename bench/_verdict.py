"""The end every benchmark shares: its figures written out, each target met or MISSED, and
exit code 1 when one was missed."""

from __future__ import annotations

import json
from pathlib import Path


def conclude(out: Path, figures: dict, met: dict[str, bool]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures | {"met": met}, indent=2))
    for target, ok in met.items():
        print(f"  target {target} {'met' if ok else 'MISSED'}")
    print(f"wrote {out}")
    if not all(met.values()):
        raise SystemExit(1)

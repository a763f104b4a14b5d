"""`edgebench prune`: the newest folders stay whole, the older keep their evidence only."""

import orjson
from click.testing import CliRunner

from edgebench.cli import main


def simulated(folder, *options):
    args = ["simulate", "scenarios/smoke.toml", "--no-plots", "--duration", "3s"]
    done = CliRunner().invoke(main, [*args, "--results-dir", str(folder), *options])
    assert done.exit_code == 0, done.output


def test_prune_keeps_the_newest_whole_and_the_evidence_of_the_others(tmp_path):
    results = tmp_path / "results"
    for name in ("a-old", "b-older-jsonl", "c-new"):
        simulated(results / name, *(("--records", "jsonl") if "jsonl" in name else ()))
    (results / "c-new" / "manifest.json").write_bytes(
        orjson.dumps(
            orjson.loads((results / "c-new" / "manifest.json").read_bytes()) | {"epoch": 4e9}
        )
    )
    dry = CliRunner().invoke(main, ["prune", str(results), "--keep", "1", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2 folder(s) pruned of their records: would free" in dry.output
    assert list((results / "a-old").glob("requests-*"))  # a dry run removes nothing
    done = CliRunner().invoke(main, ["prune", str(results), "--keep", "1"])
    assert done.exit_code == 0, done.output
    assert "freed" in done.output
    for old in ("a-old", "b-older-jsonl"):
        assert not list((results / old).glob("requests-*"))
        assert not list((results / old).glob("events-*"))
        assert (results / old / "summary.json").exists()
        assert (results / old / "report.html").exists()
        assert "pruned_at" in orjson.loads((results / old / "manifest.json").read_bytes())
    assert list((results / "c-new").glob("requests-*"))  # the newest, whole
    again = CliRunner().invoke(main, ["analyze", str(results / "a-old")])
    assert again.exit_code == 2
    assert "its records were pruned (edgebench prune" in again.output
    missing = CliRunner().invoke(main, ["prune", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "no such folder" in missing.output

"""A results folder holds one run: a used folder is refused, --overwrite clears it first."""

import pytest

from edgebench._errors import EdgebenchError
from edgebench.runfolder import prepare_results_dir

from .conftest import edgebench


def used_folder(tmp_path):
    folder = tmp_path / "reuse"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"run_id": "old1"}')
    (folder / "requests-old1-w1.jsonl").write_text('{"index": 0}\n')
    (folder / "report.html").write_text("<html>")
    (folder / "my-notes.txt").write_text("mine")
    return folder


def test_a_folder_that_holds_a_run_is_refused_and_nothing_is_lost(tmp_path):
    folder = used_folder(tmp_path)
    done = edgebench("run", "scenarios/smoke.toml", "--results-dir", folder)
    assert done.exit_code == 2
    assert done.stderr == (
        f"Error: --results-dir {folder}: holds the records of an earlier run; "
        "pass another folder, or --overwrite to clear its run files first\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "my-notes.txt",
        "report.html",
        "requests-old1-w1.jsonl",
    ]


def test_overwrite_clears_the_run_files_and_keeps_the_rest(tmp_path):
    folder = used_folder(tmp_path)
    prepare_results_dir(folder, needed=0, overwrite=True)
    assert [p.name for p in folder.iterdir()] == ["my-notes.txt"]


def test_a_new_or_empty_folder_is_taken(tmp_path):
    prepare_results_dir(tmp_path / "new", needed=0)
    prepare_results_dir(tmp_path / "new", needed=0)  # still empty: no run in it yet
    with pytest.raises(EdgebenchError, match="holds the records of an earlier run"):
        prepare_results_dir(used_folder(tmp_path), needed=0)


@pytest.mark.parametrize("kind", ["search", "advice"])
def test_overwrite_means_the_same_for_a_search_and_advice(tmp_path, kind):
    from edgebench.runfolder import prepare_search_dir

    folder = tmp_path / kind
    (folder / "probe-07").mkdir(parents=True)
    (folder / "probe-07" / "summary.json").write_text("{}")
    (folder / f"{kind}.json").write_text("{}")
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(EdgebenchError, match=f"holds an earlier {kind}; .* --overwrite"):
        prepare_search_dir(folder, kind, overwrite=False)
    prepare_search_dir(folder, kind, overwrite=True)
    # Cleared, as a run's folder is: no stale probe reads as this search's.
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]

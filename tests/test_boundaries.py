"""Each room loads only what it uses: checked in a fresh interpreter, from sys.modules."""

import textwrap

import pytest

from .conftest import run_fresh

ROOMS = {
    "traffic": (
        """
        sys.path.insert(0, "locustfiles")
        import edgegap  # the locustfile, with the traffic room and the web UI module
        """,
        ["starlette", "uvicorn", "emulator", "analysis", "pandas", "matplotlib"],
    ),
    "orchestrator": (
        """
        from edgebench.cli import main
        try:
            main(["run", "scenarios/smoke.toml", "--dry-run"])
        except SystemExit as end:
            assert end.code == 0
        import edgebench.runner.processes, edgebench.realapi.cleanup
        """,
        ["gevent", "locust", "starlette", "uvicorn", "pandas", "matplotlib"],
    ),
    "analysis": (
        """
        import analysis.cli, analysis.compare, analysis.plots, analysis.report
        """,
        ["locust", "gevent", "edgebench", "emulator", "starlette"],
    ),
    # `edgebench simulate` itself: the simulator and its command, not the run orchestrator.
    "simulator": (
        """
        import tempfile
        from edgebench.cli import main
        folder = tempfile.mkdtemp()
        try:
            main(["simulate", "scenarios/smoke.toml", "--duration", "3s",
                  "--results-dir", folder, "--overwrite", "--no-plots"])
        except SystemExit as end:
            assert end.code == 0, end.code
        """,
        [
            "edgebench.runner",
            "edgebench.realapi",
            "edgebench.traffic",
            "httpx",
            "prometheus_client",
            "gevent",
            "locust",
            "starlette",
            "uvicorn",
        ],
    ),
    "emulator": (
        """
        from emulator import EmulatorConfig, create_app
        create_app(EmulatorConfig())
        import emulator._server
        """,
        ["edgebench", "locust", "gevent", "analysis", "pandas"],
    ),
}


@pytest.mark.parametrize("room", list(ROOMS))
def test_a_room_loads_none_of_the_others(room):
    code, forbidden = ROOMS[room]
    probe = textwrap.dedent(
        f"""
        import sys
        {textwrap.indent(textwrap.dedent(code), "        ").strip()}
        loaded = set(sys.modules)
        loaded |= {{name.split(".")[0] for name in loaded}}
        loaded |= {{name.rsplit(".", 1)[0] for name in loaded}}
        print(sorted(loaded & {set(forbidden)!r}))
        """
    )
    printed = run_fresh(probe)
    assert printed.strip().splitlines()[-1] == "[]", f"{room} loaded {printed}"

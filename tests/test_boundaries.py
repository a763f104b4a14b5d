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


PACKAGES = ("edgebench", "analysis", "emulator", "checks", "geo", "locustfiles", "bench")


def module_imports() -> dict[str, set[str]]:
    """module_imports is each module of the project's packages and the project modules it
    imports anywhere in it (at the top, in a function, for type checking alike)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, node.module] if node.level else [node.module or ""])
                base = base.strip(".")
                found |= {known(f"{base}.{alias.name}") or known(base) for alias in node.names}
        graph[name] = {target for target in found if target and target != name}
    return graph


def test_no_module_imports_itself_through_others():
    graph = module_imports()
    assert len(graph) > 80
    cycles = []
    for start in graph:  # a path from the module back to itself is a cycle
        seen, stack = set(), [(start, (start,))]
        while stack:
            name, path = stack.pop()
            for target in graph[name]:
                if target == start:
                    cycles.append(" -> ".join((*path, start)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, (*path, target)))
    assert cycles == []


def test_only_the_emulator_reaches_into_its_own_private_modules():
    # The emulator's rooms meet the rest through `emulator`'s exports (emulator/__init__.py);
    # the tests alone look inside, as white-box tests do.
    inside = {
        f"{name} imports {target}"
        for name, targets in module_imports().items()
        if not name.startswith("emulator")
        for target in targets
        if target.startswith("emulator._")
    }
    assert inside == set()


def test_the_record_contract_is_written_once():
    # The writers and the analysis read one contract (checks.records), not copies of it.
    import analysis.load as load
    import checks.records as contract
    import edgebench.records as records

    assert records.REQUEST_FIELDS is contract.REQUEST_FIELDS
    assert load.REQUEST_SCHEMA.names == [field.name for field in contract.REQUEST_FIELDS]
    assert load.EVENT_SCHEMA.names == [field.name for field in contract.EVENT_FIELDS]
    assert load.run_logs is records.run_logs is contract.run_logs
    for module in (load, records):
        with open(module.__file__) as source:
            assert "open_stream" not in source.read()  # one Arrow reader

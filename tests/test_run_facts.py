"""RunFacts: what a master publishes in its options is what a worker receives."""

from types import SimpleNamespace

import pytest

from edgebench._errors import EdgebenchError
from edgebench.traffic.state import RunFacts


def test_the_facts_a_master_publishes_are_the_facts_a_worker_receives():
    facts = RunFacts("ab12cd34", "results/x", 1_000.5, 3, 60.0, "f" * 64)
    options = SimpleNamespace(scenario="s.toml")
    facts.publish(options)
    assert RunFacts.received(options) == facts


def test_a_master_of_another_version_is_a_clear_error_not_a_traceback():
    options = SimpleNamespace()
    RunFacts("ab12cd34", "results/x", 1_000.5, 3, 60.0, "f" * 64).publish(options)
    del options.edgebench_scenario_digest  # an older master publishes no digest
    with pytest.raises(EdgebenchError, match="the master sent no scenario_digest: it runs another"):
        RunFacts.received(options)

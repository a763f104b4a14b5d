"""The plan of a run, as pure functions of the scenario and its seed: no clock, no gevent.

scenario (the file) -> schedule (when each arrival is due) -> starts (dealt to users)
                    -> players and payloads (what arrival k sends, from draws)

The traffic processes, `edgebench run` (dry run, disk estimate) and `edgebench scenario`
all read the same plan.
"""

"""One traffic process's part of a run, inside Locust's gevent world.

run.TrafficRun takes this process's starts, sends them through the respect-mode
guard (guard.SendGuard), records each one (edgebench.records) and counts it live
(live); webhooks and polling record when deployments become ready; pool sizes
Locust's user pool from the rate; state is what the locustfile and its web UI
module share. locustfiles/edgegap.py is the shell around it.
"""

"""The web UI's live numbers: per-process tallies added up on the master, with a fake clock."""

from edgebench.traffic.live import LiveBoard, LiveCounts

DEPLOY, FLEET = "POST /v2/deployments", "POST /v2/private-fleets/deployments"


def worker_report(accepted: int, refused: int, dropped: int = 0, ready=()) -> dict:
    counts = LiveCounts()
    for k in range(accepted):
        counts.count(DEPLOY, "accepted")
        counts.accepted(DEPLOY, f"id{k}", sent=100.0)
    for _ in range(refused):
        counts.count(DEPLOY, "allocation_failure")
    for _ in range(dropped):
        counts.count(FLEET, "dropped")
    for k, seconds in enumerate(ready):
        counts.event({"event": "ready", "request_id": f"id{k}", "t_received": 100.0 + seconds})
    report = counts.take()
    assert counts.take()["outcomes"] == {}  # taking resets the tally
    return report


def test_the_board_adds_up_workers_and_rates_come_from_the_last_ten_seconds():
    board = LiveBoard()
    board.merge(None, now=0.0)
    board.merge(worker_report(30, 10, ready=(2.0, 4.0)), now=5.0)  # worker 0
    board.merge(worker_report(50, 10, dropped=2), now=10.0)  # worker 1
    rows = {row["endpoint"]: row for row in board.rows()}
    deploy = rows[DEPLOY]
    assert deploy["share_202"] == "80.0%"  # 80 of 100 sent
    assert deploy["share_422"] == "20.0%"
    assert deploy["offered"] == "10.0"  # 100 starts in 10 s
    assert deploy["accepted"] == "8.0"
    assert deploy["ttr_p50"] == "2.00 s"
    assert deploy["ttr_p95"] == "4.00 s"
    assert rows[FLEET]["dropped"] == "2"
    assert rows[FLEET]["share_202"] == "-"  # nothing sent there
    assert rows["All endpoints"]["offered"] == "10.2"


def test_a_new_run_starts_from_zero_and_names_its_report():
    board = LiveBoard()
    board.merge(worker_report(3, 0), now=1.0)
    board.reset()
    board.report_url = "/edgebench/report"
    assert board.rows() == [{"endpoint": "Report of the last run: /edgebench/report"}]


def test_each_report_makes_a_point_of_the_live_charts_from_every_worker():
    board = LiveBoard()
    board.merge(None, now=0.0)
    first = LiveCounts()
    for wait in (0.5, 1.0, 3.0):
        first.count(DEPLOY, "accepted")
        first.served(wait)
    first.count(DEPLOY, "rate_limited")
    first.queued = 4
    board.merge(first.take(), now=5.0, source="w0")
    second = LiveCounts()
    second.count(DEPLOY, "dropped")  # not sent: in no share
    second.queued = 2
    board.merge(second.take(), now=10.0, source="w1")
    point = board.series[-1]
    assert point["t"] == 10.0
    assert point["offered"] == 0.5  # 5 starts in 10 s
    assert (point["share_202"], point["share_429"], point["share_422"]) == (0.75, 0.25, 0.0)
    assert (point["wait_p50"], point["wait_p95"]) == (1.0, 3.0)
    assert point["queue"] == 6  # each worker's latest, added up
    # The waits and shares are the last ten seconds': older ones leave the point.
    board.merge(None, now=21.0)
    assert board.series[-1]["wait_p95"] is None
    assert board.series[-1]["share_202"] is None
    assert [p["t"] for p in board.series] == [0.0, 5.0, 10.0, 21.0]


def test_the_waits_percentiles_are_those_of_every_report_in_the_window_together():
    board = LiveBoard()
    for now, waits in ((1.0, (3.0, 0.5, 9.0)), (2.0, (2.0, 0.1)), (3.0, (7.0, 4.0, 1.0, 8.0, 6.0))):
        counts = LiveCounts()
        for wait in waits:
            counts.count(DEPLOY, "accepted")
            counts.served(wait)
        board.merge(counts.take(), now=now)
    point = board.series[-1]  # of 0.1 0.5 1 2 3 4 6 7 8 9: ranks 5 and 10
    assert (point["wait_p50"], point["wait_p95"]) == (3.0, 9.0)

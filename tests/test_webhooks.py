"""The webhook receiver over real HTTP: garbage, huge and stray callbacks are counted, not kept."""

import subprocess
import sys
import textwrap

import orjson
import pytest

# Started processes and servers, timed: one after another, in the first group of live
# tests (the second runs on the other worker: Makefile).
pytestmark = pytest.mark.xdist_group("live")

# The receiver is a gevent server: it and its client run in a process of their own.
SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import sys, urllib.request, urllib.error
    import orjson
    from edgebench.traffic.webhooks import WebhookReceiver

    class Events:
        def __init__(self): self.lines = []
        def add(self, record): self.lines.append(record)

    events = Events()
    receiver = WebhookReceiver(events, "w0", "edgebench-run1", known={"known-1"}.__contains__)
    receiver.start()

    def post(path, body):
        request = urllib.request.Request(receiver.url + path, data=body, method="POST")
        try:
            return urllib.request.urlopen(request, timeout=5).status
        except urllib.error.HTTPError as exc:
            return exc.code

    status = orjson.dumps({"request_id": "known-1", "current_status": "Status.READY"})
    codes = [
        post("/edgebench-run1/ready", status),
        post("/edgebench-run1/ready", b"{not json"),
        post("/edgebench-run1/ready", b"[1, 2]"),
        post("/edgebench-run1/ready", b"x" * 300_000),
        post("/edgebench-run1/ready", orjson.dumps({"request_id": "someone-else"})),
        post("/another-run/ready", status),
        post("/edgebench-run1/exploded", status),
    ]
    receiver.stop()
    sys.stdout.write(orjson.dumps({"codes": codes, "counts": receiver.counts(),
                                   "events": events.lines}).decode())
    """
)


def test_the_receiver_keeps_only_this_runs_callbacks_and_counts_the_rest():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result = orjson.loads(done.stdout)
    assert result["codes"] == [204, 400, 400, 413, 404, 404, 404]
    assert result["counts"] == {
        "worker": "w0",
        "recorded": 1,
        "rejected": {
            "not_a_status": 2,
            "too_large": 1,
            "unknown_request_id": 1,
            "unknown_path": 2,
        },
    }
    assert [e["request_id"] for e in result["events"]] == ["known-1"]

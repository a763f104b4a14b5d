"""The Locust shell's fixes to Locust's own costs, each in a fresh interpreter.

The users' HTTP client: every answer is an answer, and no answer leaves garbage in a
cycle. geventhttpclient raises for a status outside its valid codes, and the exception, its
traceback and frames make a cycle with the response: about 50 objects a 422 or 429,
whose collection paused a 1,000/s run for 280 ms. Checked against a loopback server of
the program's own.

A worker's spawn message: Locust builds its argument parser for each option of each
message (150 ms at every change of the pool); the locustfile has it built once.
"""

import json

from .conftest import run_fresh

PROGRAM = r"""
import gc, json, sys
sys.path.insert(0, "locustfiles")
from gevent.server import StreamServer
from locust.env import Environment
import edgegap

BODY = b'{"request_id": "abc", "message": "no_capacity"}'

def answer(connection, _address):  # keep-alive; the status is the path
    stream = connection.makefile("rb")
    while (line := stream.readline()):
        status = line.split()[1].strip(b"/")
        length = 0
        while (header := stream.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        stream.read(length)
        connection.sendall(b"HTTP/1.1 " + status + b" X\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)

server = StreamServer(("127.0.0.1", 0), answer)
server.start()
environment = Environment(user_classes=[edgegap.DeployUser])
edgegap.DeployUser.host = f"http://127.0.0.1:{server.server_port}"
failures = []
environment.events.request.add_listener(lambda exception, **kw: failures.append(exception))
user = edgegap.DeployUser(environment)

def post(status):
    with user.client.post(f"/{status}", data=b"{}", catch_response=True) as response:
        answered = response.status_code
        if answered != 202:
            response.failure(f"status {answered}")
        else:
            response.success()
    return answered

for status in (202, 422, 429, 503):
    post(status)  # connections and caches made once
gc.collect()
gc.set_debug(gc.DEBUG_SAVEALL)
answered = [post(status) for status in (202, 422, 429, 503) for _ in range(25)]
gc.collect()
failed = sum(exception is not None for exception in failures[4:])
print(json.dumps({"garbage": len(gc.garbage), "answered": sorted(set(answered)), "failed": failed}))
"""


def test_answers_of_every_status_come_back_as_answers_and_leave_no_garbage():
    assert json.loads(run_fresh(PROGRAM)) == {
        "garbage": 0,
        "answered": [202, 422, 429, 503],
        "failed": 75,  # each non-202 a failure in Locust's stats, as TrafficRun marks it
    }


DEFAULTS_PROGRAM = """
import sys
sys.path.insert(0, "locustfiles")
from locust import argument_parser
import edgegap

built = []
make_parser = argument_parser.get_empty_argument_parser
argument_parser.get_empty_argument_parser = lambda: built.append(1) or make_parser()
options = {"scenario": "x.toml", "host": "h", **argument_parser.default_args_dict()}
custom = [k for k in options if k not in argument_parser.default_args_dict()]
print(len(built), custom)
"""


def test_a_workers_spawn_message_builds_locusts_argument_parser_once_at_most():
    printed = run_fresh(DEFAULTS_PROGRAM)
    assert printed.strip() == "1 ['scenario']"  # built once; the custom option found

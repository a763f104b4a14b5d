"""The baseline generator: a bare FastHttpUser posting one fixed body, paced per user.

BENCH_RATE (requests/s, all users) and BENCH_USERS set the pace; 0 means as fast as it can.
Paced users start at spread-out offsets within their period, so their requests are spread
evenly in time as an open model's are, not sent in bursts of every user at once (which
would spare the generator most of its wake-ups).
"""

import os
import random

import gevent
from locust import FastHttpUser, constant, constant_throughput, task

RATE = float(os.environ.get("BENCH_RATE", "0"))
USERS = int(os.environ.get("BENCH_USERS", "32"))
BODY = (
    b'{"application":"my-game","version":"1.0.0","users":[{"user_type":"geo_coordinates",'
    b'"user_data":{"latitude":45.5,"longitude":-73.6}}]}'
)


class BareUser(FastHttpUser):
    wait_time = constant_throughput(RATE / USERS) if RATE else constant(0)

    def on_start(self) -> None:
        if RATE:
            gevent.sleep(random.random() * USERS / RATE)

    @task
    def post(self) -> None:
        headers = {"Content-Type": "application/json", "Authorization": "token bench"}
        self.client.post("/v2/deployments", data=BODY, headers=headers)

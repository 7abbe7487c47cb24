"""A faust worker that only reads a topic (and optionally produces or writes a table per event): the floor.

    python benchmarks/faust_floor.py MODE BOOTSTRAP TOPIC COUNT

MODE is `consume` (iterate `take_events(1000)`), `produce` (plus one `app.producer.send` per event) or
`changelog` (plus one table write per event, i.e. one changelog message). It prints the seconds from the
first event to the COUNT-th as one line of JSON and exits. Run by `bench_faust` in a process of its own,
as a popsync worker runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import faust

MODES = ("consume", "produce", "changelog")


def main(argv: list[str]) -> None:
    mode, bootstrap, topic_name, count = argv[0], argv[1], argv[2], int(argv[3])
    if mode not in MODES:
        raise SystemExit(f"MODE must be one of {', '.join(MODES)}, not {mode!r}")
    app = faust.App(
        f"popsync-floor-{uuid.uuid4().hex[:8]}",
        broker=[f"kafka://{hp}" for hp in bootstrap.split(",")],
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
        producer_linger=0.02,
        broker_session_timeout=10.0,
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes)
    out = app.topic(f"{topic_name}.out", key_type=bytes, value_type=bytes)
    table = app.Table("floor")
    state: dict[str, Any] = {"seen": 0, "started": None}

    async def agent(stream: Any) -> None:
        async for events in stream.take_events(1000, within=0.2):
            if state["started"] is None:
                state["started"] = time.perf_counter()
            for event in events:
                if mode == "produce":
                    await app.producer.send(out.get_topic_name(), event.key, event.value, None, None, None)
                elif mode == "changelog":
                    key = (event.key or b"").decode()
                    table.data[key] = 1
                    table.send_changelog(event.message.partition, key, 1)
            state["seen"] += len(events)
            if state["seen"] >= count:
                seconds = time.perf_counter() - state["started"]
                print(json.dumps({"mode": mode, "events": state["seen"], "seconds": seconds}), flush=True)
                # A benchmark process: the figure is out; faust's orderly shutdown (seconds) is not measured.
                os._exit(0)

    app.agent(topic, name="floor")(agent)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])

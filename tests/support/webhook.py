"""A webhook receiver for the tests, run as its own process: ``python -m tests.support.webhook``.

It answers each POST by a plan: ``--plan 500,timeout,200`` gives the first
requests those answers (``timeout``: no answer for ``--slow`` seconds), later
ones 200; a body whose ``run_id`` is in ``--poison FILE`` always gets 500;
``--delay`` slows every answer. Every request is appended to ``--log`` as one
JSON line: ``{"n", "status", "body"}``, written before the answer is sent, so
``status`` 2xx means the sender was told "delivered". Prints ``ready <port>``.
:class:`Webhook` starts one from a test and reads what it received.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Webhook:
    """A ``tests.support.webhook`` process and what it received."""

    def __init__(self, log: Path, *options: str) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.webhook", "--log", str(log), *options],
            cwd=Path(__file__).resolve().parent.parent.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("ready "), line
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def accepted(self) -> list[dict[str, Any]]:
        """The bodies answered with a 2xx (the sender was told: delivered)."""
        return [r["body"] for r in self.requests() if 200 <= r["status"] < 300]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", required=True)
    parser.add_argument("--plan", default="")
    parser.add_argument("--poison", help="file with one poisoned run id per line")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--slow", type=float, default=5.0)
    args = parser.parse_args(argv)
    plan = [step for step in args.plan.split(",") if step]
    poison = set(Path(args.poison).read_text().split()) if args.poison else set()
    log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115
    lock = threading.Lock()
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body: Any = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                counter["n"] += 1
                n = counter["n"]
                step = plan[n - 1] if n <= len(plan) else "200"
                if isinstance(body, dict) and body.get("run_id") in poison:
                    step = "500"
                status = 599 if step == "timeout" else int(step)
                record = {"n": n, "status": status, "body": body}
                record["headers"] = {k.lower(): v for k, v in self.headers.items()}
                log.write(json.dumps(record) + "\n")
                log.flush()
            if step == "timeout":
                time.sleep(args.slow)
            time.sleep(args.delay)
            self.send_response(status if step != "timeout" else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()

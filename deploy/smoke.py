"""Smoke test of an installed bot: `oncall serve` on its embedded defaults answers an alert.

Runs the command given after ``--`` (default: ``oncall serve``), which must start in local mode (no Slack
tokens: the built-in Slack emulator). It reads what `oncall serve` prints in that mode, the incoming webhook
of #incidents and the emulator's history URL; waits for /healthz and /readyz; posts an Alertmanager-shaped
alert through the webhook, exactly as Alertmanager would; waits for the bot's decision in the alert's
thread; then stops the bot with SIGTERM and expects exit status 0.

Standard library only, so it runs with any Python 3.11 beside any install: a fresh venv from the wheel
(.ci/wheel-smoke) or inside the container image (mounted in, .ci/image-smoke).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

ALERT = {"text": "[FIRING:1] HighErrorRate checkout 5xx at 35% for 10m (critical)"}
LISTENING = re.compile(r"oncall bot listening on (http://\S+)")
WEBHOOK = re.compile(r"(http://127\.0\.0\.1:\d+/services/\S+)")
HISTORY = re.compile(r"curl -s (http://127\.0\.0\.1:\d+)/_emulator/channels/incidents/history")


class SmokeFailed(Exception):
    pass


def http(url: str, body: dict[str, Any] | None = None, timeout: float = 5.0) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def until(what: str, deadline: float, check: Any) -> Any:
    """``check()`` until it returns something truthy (connection errors count as not yet)."""
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise SmokeFailed(f"timed out waiting for {what}")


def read_lines(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        print(f"  | {line.rstrip()}", file=sys.stderr, flush=True)
        lines.put(line)
    lines.put(None)


def smoke(command: list[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        env.pop(name, None)  # embedded defaults: local mode
    print(f"smoke: starting {' '.join(command)}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=read_lines, args=(proc, lines), daemon=True).start()
    passed = False
    try:
        found: dict[str, str] = {}
        while len(found) < 3:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise SmokeFailed("timed out waiting for `oncall serve` to print its URLs") from None
            if line is None:
                raise SmokeFailed(f"`oncall serve` exited with status {proc.wait()} before it listened")
            for key, pattern in (("bot", LISTENING), ("webhook", WEBHOOK), ("emulator", HISTORY)):
                if key not in found and (match := pattern.search(line)):
                    found[key] = match.group(1)
        bot = found["bot"].replace("://0.0.0.0:", "://127.0.0.1:")  # listening on all interfaces
        status, _ = http(bot + "/healthz")
        if status != 200:
            raise SmokeFailed(f"/healthz answered {status}")
        ready = until("/readyz 200", deadline, lambda: (r := http(bot + "/readyz"))[0] == 200 and r[1])
        readiness = json.loads(ready)
        print(f"smoke: ready: {ready}", file=sys.stderr, flush=True)
        if readiness.get("status") != "ok":
            raise SmokeFailed(f"/readyz is not ok: {ready}")
        status, text = http(found["webhook"], ALERT)
        if (status, text) != (200, "ok"):
            raise SmokeFailed(f"the incoming webhook answered {status} {text!r}")
        emulator = found["emulator"]
        bot_id = json.loads(http(emulator + "/_emulator/workspace")[1])["bot"]["id"]

        def decision() -> dict[str, Any] | None:
            history = json.loads(http(emulator + "/_emulator/channels/incidents/history")[1])
            for message in history:
                if "HighErrorRate" not in json.dumps(message):
                    continue
                for reply in message.get("replies", []):
                    if reply.get("bot_id") == bot_id:
                        return reply
            return None

        reply = until("the bot's decision in the alert's thread", deadline, decision)
        body = json.dumps(reply.get("blocks", []))
        for part in ("*Severity:*", "*Category:*", "Recommended actions", readiness["serving_version"]):
            if part not in body:
                raise SmokeFailed(f"the decision lacks {part!r}: {body[:400]}")
        status, metrics = http(bot + "/metrics")
        if status == 200 and "oncall_replies" not in metrics:
            raise SmokeFailed("/metrics does not count replies")
        passed = True
        return f"alert answered by model version {readiness['serving_version']}: {reply.get('text', '')!r}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise SmokeFailed("`oncall serve` did not stop within 30 s of SIGTERM") from None
            if code != 0 and passed:  # a failure already raised says more
                raise SmokeFailed(f"`oncall serve` exited with status {code} on SIGTERM")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds for the whole check")
    parser.add_argument("command", nargs="*", default=["oncall", "serve"], help="after --")
    args = parser.parse_args()
    try:
        print(f"smoke: ok: {smoke(args.command, args.timeout)}", flush=True)
    except SmokeFailed as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Smoke test of an installed bot: it answers an alert posted to an incoming webhook, as Alertmanager posts.

Runs the bot command given after ``--`` (default: ``oncall serve``), in one of two modes:

- local (the default): the command starts in local mode (no Slack tokens: the built-in Slack emulator).
  The test reads what `oncall serve` prints in that mode: the bot's URL, the incoming webhook of #incidents
  and the emulator's history URL.
- ``--http``: the Slack emulator runs beside the command (``python -m bot.local.emulator``, with the Python
  running this script), and the command gets SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL and
  ONCALL_PORT (a free port) in its environment: HTTP mode, as in production. For a container, pass them
  through (``podman run --network host -e SLACK_BOT_TOKEN -e ...``).

Either way it waits for /healthz and /readyz, posts an alert through the webhook, waits for the bot's
decision in the alert's thread, runs the ``--also`` checks while the bot still runs, then stops the bot
with SIGTERM and expects exit status 0.

Standard library only in local mode, so it runs with any Python 3.11 beside any install: a fresh venv
from the wheel (.ci/wheel-smoke); the image (.ci/image-smoke) is run in HTTP mode.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

ALERT = {"text": "[FIRING:1] HighErrorRate checkout 5xx at 35% for 10m (critical)"}
LISTENING = re.compile(r"oncall bot listening on (http://\S+)")
WEBHOOK = re.compile(r"(http://127\.0\.0\.1:\d+/services/\S+)")
HISTORY = re.compile(r"curl -s (http://127\.0\.0\.1:\d+)/_emulator/channels/incidents/history")
EMULATOR = re.compile(r"Slack emulator on (http://127\.0\.0\.1:\d+)")
EMULATOR_WEBHOOK = re.compile(r"incoming webhook for #incidents: (http://\S+)")


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


def until(what: str, deadline: float, check: Callable[[], Any]) -> Any:
    """``check()`` until it returns something truthy (connection errors count as not yet)."""
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise SmokeFailed(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process whose output is echoed (prefixed) and searched line by line."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        print(f"smoke: starting {name}: {shlex.join(argv)}", file=sys.stderr, flush=True)
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            print(f"  {self.name} | {line.rstrip()}", file=sys.stderr, flush=True)
            self.lines.put(line)
        self.lines.put(None)

    def find(self, patterns: dict[str, re.Pattern[str]], deadline: float) -> dict[str, str]:
        """The first match of each pattern in the output (group 1), by key."""
        found: dict[str, str] = {}
        while len(found) < len(patterns):
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise SmokeFailed(f"timed out waiting for {self.name} to print its URLs") from None
            if line is None:
                raise SmokeFailed(f"{self.name} exited with status {self.proc.wait()} before it listened")
            for key, pattern in patterns.items():
                if key not in found and (match := pattern.search(line)):
                    found[key] = match.group(1)
        return found

    def stop(self) -> int:
        """SIGTERM, then its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise SmokeFailed(f"{self.name} did not stop within 30 s of SIGTERM") from None
        return self.proc.returncode


def answered(bot: str, webhook: str, emulator: str, deadline: float) -> str:
    """The bot at ``bot`` is healthy and ready, and answers an alert posted to ``webhook`` in its thread."""
    status, _ = until("/healthz", deadline, lambda: http(bot + "/healthz"))
    if status != 200:
        raise SmokeFailed(f"/healthz answered {status}")
    ready = until("/readyz 200", deadline, lambda: (r := http(bot + "/readyz"))[0] == 200 and r[1])
    readiness = json.loads(ready)
    print(f"smoke: ready: {ready}", file=sys.stderr, flush=True)
    if readiness.get("status") != "ok":
        raise SmokeFailed(f"/readyz is not ok: {ready}")
    status, text = http(webhook, ALERT)
    if (status, text) != (200, "ok"):
        raise SmokeFailed(f"the incoming webhook answered {status} {text!r}")
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
    return f"alert answered by model version {readiness['serving_version']}: {reply.get('text', '')!r}"


def smoke(command: list[str], http_mode: bool, also: list[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"):
        env.pop(name, None)  # local mode unless --http says otherwise
    started: list[Process] = []
    passed = False
    try:
        if http_mode:
            port, secret, token = free_port(), secrets.token_hex(16), f"xoxb-smoke-{secrets.token_hex(8)}"
            bot_url = f"http://127.0.0.1:{port}"
            emulator_argv = [sys.executable, "-m", "bot.local.emulator", "--port", "0"]
            emulator_argv += ["--bot-url", bot_url + "/slack/events", "--signing-secret", secret]
            emu = Process("emulator", [*emulator_argv, "--bot-token", token], env)
            started.append(emu)
            urls = emu.find({"emulator": EMULATOR, "webhook": EMULATOR_WEBHOOK}, deadline)
            env |= {
                "SLACK_BOT_TOKEN": token,
                "SLACK_SIGNING_SECRET": secret,
                "SLACK_API_URL": urls["emulator"] + "/api/",
                "ONCALL_PORT": str(port),
            }
            started.append(Process("bot", command, env))
        else:
            bot = Process("bot", command, env)
            started.append(bot)
            urls = bot.find({"bot": LISTENING, "webhook": WEBHOOK, "emulator": HISTORY}, deadline)
            bot_url = urls["bot"].replace("://0.0.0.0:", "://127.0.0.1:")
        summary = answered(bot_url, urls["webhook"], urls["emulator"], deadline)
        for check in also:
            print(f"smoke: also: {check}", file=sys.stderr, flush=True)
            if (code := subprocess.run(check, shell=True, env=env).returncode) != 0:
                raise SmokeFailed(f"{check!r} exited with status {code}")
        passed = True
        return summary
    finally:
        for process in reversed(started):
            code = process.stop()
            if code != 0 and passed and process.name == "bot":  # a failure already raised says more
                raise SmokeFailed(f"the bot exited with status {code} on SIGTERM")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--http", action="store_true", help="HTTP mode against `python -m bot.local.emulator`"
    )
    parser.add_argument("--also", action="append", default=[], help="a shell check, once answered")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds for the whole check")
    parser.add_argument("command", nargs="*", default=["oncall", "serve"], help="after --")
    args = parser.parse_args()
    try:
        print(f"smoke: ok: {smoke(args.command, args.http, args.also, args.timeout)}", flush=True)
    except SmokeFailed as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

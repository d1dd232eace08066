"""What the fault suites share: the app's components as processes of their own, a steady load
through the API and the commands topic, and the ledger of what it sent and was told."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.builders import command, contributor
from tests.signing import TeamProducer

RATE_PER_SECOND = 8  # per path (HTTP and topic)
TEAM_A = contributor("team-a")  # the owner of the recommendations the load reports on


class Processes:
    """The app's components as separate processes, so each can be killed on its own."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.log = open(os.path.join(env["RECTRACK_HOME"], "components.log"), "ab")  # noqa: SIM115

    def start(self, name: str) -> None:
        component = name.rstrip("ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", "-c", component],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop_all(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()


@dataclass
class Ledger:
    """What the load sent and what it was told."""

    sent: set[uuid.UUID] = field(default_factory=set)
    acknowledged: set[uuid.UUID] = field(default_factory=set)  # 201, or accepted outcome
    http_statuses: Counter[int] = field(default_factory=Counter)


async def http_load(
    url: str, token: str, recs: list[str], ledger: Ledger, stop: asyncio.Event
) -> None:
    """POST commands at a steady rate; resend what was not acknowledged, with its command_id."""
    backlog: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=url, timeout=15, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        n = 0
        while not stop.is_set() or backlog:
            if not stop.is_set():
                n += 1
                cid = uuid.uuid4()
                ledger.sent.add(cid)
                backlog.append(
                    {
                        "type": "ReportProgress",
                        "command_id": str(cid),
                        "data": {
                            "recommendation_id": recs[n % len(recs)],
                            "position": f"http {n}",
                            "delivery_status": "on_track",
                        },
                    }
                )
            body = backlog.pop(0)
            try:
                response = await api.post("/commands", json=body, params={"wait": 5})
                ledger.http_statuses[response.status_code] += 1
                if response.status_code == 201:
                    ledger.acknowledged.add(uuid.UUID(body["command_id"]))
                elif response.status_code != 202:  # 202: decided later, read from outcomes
                    backlog.append(body)
            except httpx.HTTPError:
                ledger.http_statuses[0] += 1
                backlog.append(body)
            await asyncio.sleep(1 / RATE_PER_SECOND)


async def topic_load(
    team: TeamProducer, recs: list[str], ledger: Ledger, stop: asyncio.Event
) -> None:
    """Another team's system: commands signed with its own key, straight onto the topic."""
    n = 0
    while not stop.is_set():
        n += 1
        rec_id = recs[n % len(recs)]
        cmd = command(
            "ReportProgress",
            {"recommendation_id": rec_id, "position": f"topic {n}", "delivery_status": "on_track"},
            actor=TEAM_A,
            effective_date=None,
        )
        ledger.sent.add(cmd.command_id)
        try:
            await team.send(rec_id, cmd)
        except Exception:
            await asyncio.sleep(1)
            try:
                await team.send(rec_id, cmd)
            except Exception:
                ledger.sent.discard(cmd.command_id)  # never acknowledged by the broker
        await asyncio.sleep(1 / RATE_PER_SECOND)

"""Resume after a disconnect replays exactly the missed events, without duplicates, on both
deployment shapes: mid-run (then the live tail), after the run ended, and after the server
dropped a client too slow to keep up (1013), which never slowed the run or anyone else."""

import asyncio
import json
import socket
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from tests.support.protocol_checks import check_run_stream
from tests.support.run_harness import LiveServer, WsClient, live_server, new_user
from tests.support.scripted_workflow import Burst, ScriptedWorkflow, Sleep, Think

STEPS = 40


def paced_script(text: str) -> list[Any]:
    if text == "burst":
        return [Burst(3_000, size=4_096, pace_s=0.000_5)]
    return [step for n in range(STEPS) for step in (Think(f"step {n}"), Sleep(0.02))]


def run_events(frames: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    return [f for f in frames if f.get("run_id") == run_id and "seq" in f]


async def test_resume_mid_run_replays_exactly_what_was_missed(deployment) -> None:  # type: ignore[no-untyped-def]
    async with live_server(deployment(), ScriptedWorkflow([], script_for=paced_script)) as server:
        user_id, token = await new_user(server)
        watcher = await WsClient.connect(server, token)
        leaving = await WsClient.connect(server, token)
        run = await leaving.start_run("paced")
        before = await leaving.recv_until(lambda f: f.get("seq") == 5)
        await leaving.connection.close()
        await asyncio.sleep(0.1)
        back = await WsClient.connect(server, token)
        await back.send({"type": "resume", "run_id": run["run_id"], "after_seq": 5})
        resumed = await back.events_until_final(run["run_id"])
        seqs = [e["seq"] for e in resumed]
        assert seqs[0] == 6 and seqs == list(range(6, 6 + len(seqs)))
        combined = run_events(before, run["run_id"]) + resumed
        check_run_stream(combined, run_id=run["run_id"], user_id=user_id, state="completed")
        everything = await watcher.events_until_final(run["run_id"])
        assert combined == everything
        await back.send({"type": "ping"})
        assert (await back.recv())["type"] == "pong"
        await asyncio.gather(watcher.close(), back.close())


async def test_resume_after_the_run_ended_replays_the_tail_once(deployment) -> None:  # type: ignore[no-untyped-def]
    async with live_server(deployment(), ScriptedWorkflow([], script_for=paced_script)) as server:
        user_id, token = await new_user(server)
        client = await WsClient.connect(server, token)
        run = await client.start_run("paced")
        everything = await client.events_until_final(run["run_id"])
        await client.close()
        later = await WsClient.connect(server, token)
        for after_seq in (3, 0, len(everything)):
            await later.send({"type": "resume", "run_id": run["run_id"], "after_seq": after_seq})
            await later.send({"type": "ping"})
            frames = await later.recv_until(lambda f: f["type"] == "pong")
            assert run_events(frames, run["run_id"]) == everything[after_seq:]
        check_run_stream(everything, run_id=run["run_id"], user_id=user_id, state="completed")
        await later.close()


class StalledClient:
    """A WebSocket client that reads nothing until told to: a raw socket with a tiny receive
    buffer and the websockets sans-I/O protocol, so no library reads ahead in the background."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
        self.sock.setblocking(False)
        self.protocol = ClientProtocol(
            parse_uri(server.ws_url),
            max_size=None,
            subprotocols=[Subprotocol("apex.v1"), Subprotocol(f"bearer.{token}")],
        )
        self.server = server

    async def open(self) -> None:
        await self.loop.sock_connect(self.sock, ("127.0.0.1", self.server.port))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        self.early: list[Any] = []
        while not any(isinstance(e, Response) for e in self.early):
            self.early.extend(await self._read())

    async def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                await self.loop.sock_sendall(self.sock, chunk)

    async def _read(self) -> list[Any]:
        data = await self.loop.sock_recv(self.sock, 65_536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        await self._flush()
        return list(self.protocol.events_received())

    async def drain(self) -> tuple[list[dict[str, Any]], int | None]:
        """Every message the server managed to send, and the close code it ended with."""
        events = self.early
        async with asyncio.timeout(60):
            while self.protocol.state is not State.CLOSED:
                events.extend(await self._read())
        messages = [
            json.loads(e.data) for e in events if isinstance(e, Frame) and e.opcode is Opcode.TEXT
        ]
        self.sock.close()
        close = self.protocol.close_rcvd
        return messages, close.code if close else None


async def test_a_slow_client_is_dropped_with_1013_and_resumes(deployment) -> None:  # type: ignore[no-untyped-def]
    settings = deployment()
    async with live_server(settings, ScriptedWorkflow([], script_for=paced_script)) as server:
        user_id, token = await new_user(server)
        fast = await WsClient.connect(server, token)
        slow = StalledClient(server, token)
        await slow.open()
        run = await fast.start_run("burst")
        everything = await fast.events_until_final(run["run_id"], timeout=120)
        check_run_stream(everything, run_id=run["run_id"], user_id=user_id, state="completed")
        assert (await server.app.state.run_manager.get(user_id, run["run_id"])).state == "completed"
        received, close_code = await slow.drain()
        assert close_code == 1013
        assert received[0]["type"] == "connection_ready"
        got = run_events(received, run["run_id"])
        assert 0 < len(got) < len(everything)
        assert got == everything[: len(got)]
        back = await WsClient.connect(server, token)
        await back.send({"type": "resume", "run_id": run["run_id"], "after_seq": got[-1]["seq"]})
        rest = await back.events_until_final(run["run_id"], timeout=60)
        assert got + rest == everything
        await asyncio.gather(fast.close(), back.close())

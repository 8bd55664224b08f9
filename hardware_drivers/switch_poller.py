"""Background polling of the bench switches (and, optionally, their link traps) as typed events.

One thread runs its own asyncio loop, so a synchronous caller (the bench agent) can start and stop
it like the udev watcher. Every switch is polled on its own task every ``interval`` seconds; each
poll is compared with the previous one (:class:`~hardware_drivers.switch_diff.SwitchTracker`) and
what changed goes to ``on_event``: MacSeen / MacGone as MACs arrive on and leave ports, LinkUp /
LinkDown as ``ifOperStatus`` changes. A link trap is reported at once and makes that switch poll
straight away, so the laptop's MAC follows its link without waiting for the interval.

A switch with a ``usm`` user is polled over SNMPv3 (authPriv) and its user is accepted for traps; once
a v3 poll has succeeded, the engine ID the switch answered with is registered with the trap receiver,
so its v3 TRAPs (keys localised to the sender's engine ID) are accepted without an ``engine_id`` in
the site file.

A failing switch never stops the poller: its :class:`~hardware_drivers.events.DriverError` goes to
``on_error`` (switch name + typed error), the other switches carry on, and the failing one is
retried with a doubling delay capped at ``max_backoff``; ``on_recovered`` says when it answers again.
Callbacks run on the poller's thread and must not block for long; their exceptions are logged.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hardware_drivers.events import DriverError, LinkEvent, MalformedReply
from hardware_drivers.snmp import SwitchClient, SwitchSnapshot
from hardware_drivers.snmp_traps import TrapReceiver
from hardware_drivers.switch_diff import SwitchEvent, SwitchTracker
from hardware_drivers.switch_security import UsmUser

log = logging.getLogger(__name__)

EventCallback = Callable[[SwitchEvent], None]
ErrorCallback = Callable[[str, DriverError], None]
RecoveredCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SwitchTarget:
    """One switch to poll; ``name`` is what the port map calls it. With ``usm`` it is read over
    SNMPv3 at authPriv and ``community`` is not used."""

    name: str
    host: str
    port: int = 161
    community: str = "public"
    interval: float = 10.0  # seconds between polls while it answers
    timeout: float = 2.0  # per request; a poll gives up after timeout x (retries + 1)
    retries: int = 1
    usm: UsmUser | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.host:
            raise ValueError("a switch needs a name and a host")
        if self.interval <= 0 or self.timeout <= 0 or self.retries < 0 or not 0 < self.port < 65536:
            raise ValueError(f"switch {self.name}: interval and timeout must be > 0, retries >= 0, port 1-65535")


@dataclass(frozen=True, slots=True)
class TrapListen:
    """Where to receive link traps; ``communities`` default to the v2c switches' own (none when every
    switch is SNMPv3: community traps are then refused), SNMPv3 users are the switches' ``usm``."""

    host: str = "0.0.0.0"
    port: int = 162
    communities: tuple[str, ...] = ()


def backoff_delay(interval: float, failures: int, cap: float) -> float:
    """Delay before the next poll of a switch that failed ``failures`` times in a row."""
    if failures <= 0:
        return interval
    return min(interval * 2.0**failures, max(cap, interval))


class SwitchPoller:
    def __init__(
        self,
        switches: Sequence[SwitchTarget],
        on_event: EventCallback,
        on_error: ErrorCallback,
        *,
        on_recovered: RecoveredCallback | None = None,
        traps: TrapListen | None = None,
        max_backoff: float = 60.0,
    ) -> None:
        names = [s.name for s in switches]
        if len(set(names)) != len(names):
            raise ValueError("switch names must be unique")
        self.switches = tuple(switches)
        self._on_event = on_event
        self._on_error = on_error
        self._on_recovered = on_recovered
        self._traps = traps
        self._max_backoff = max_backoff
        self._trackers = {s.name: SwitchTracker(s.name) for s in switches}
        self._snapshots: dict[str, SwitchSnapshot] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: dict[str, asyncio.Event] = {}
        self._trapped: dict[str, set[int]] = {s.name: set() for s in switches}  # link traps during a poll
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._trap_port: int | None = None
        self._receiver: TrapReceiver | None = None

    @property
    def trap_port(self) -> int | None:
        """The UDP port traps are received on (useful with ``port=0``); ``None`` without traps."""
        return self._trap_port

    def snapshot(self, switch: str) -> SwitchSnapshot | None:
        """The switch's last successful poll, if any."""
        return self._snapshots.get(switch)

    def start(self, timeout: float = 10.0) -> None:
        """Start polling; raises ``OSError`` at once if the trap port cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("SwitchPoller already started")
        self._thread = threading.Thread(target=self._thread_main, name="switch-poller", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"switch poller did not start within {timeout:g} s")
        if self._start_error is not None:
            self._thread.join(timeout)
            raise self._start_error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling, close the sockets and wait for the thread; idempotent."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:
                pass  # the loop already ended
        thread.join(timeout)
        if thread.is_alive():
            log.warning("switch poller did not stop within %g s", timeout)

    # -- the poller's thread ----------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # never let anything escape the thread unreported
            if not self._ready.is_set():
                self._start_error = exc
            else:
                log.exception("switch poller stopped unexpectedly")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = {s.name: asyncio.Event() for s in self.switches}
        receiver = await self._start_traps() if self._traps is not None else None
        clients = [
            SwitchClient(s.name, s.host, s.port, s.community, s.timeout, s.retries, usm=s.usm) for s in self.switches
        ]
        tasks = [
            asyncio.create_task(self._poll_forever(s, c), name=f"poll-{s.name}")
            for s, c in zip(self.switches, clients, strict=True)
        ]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients:
                await client.close()
            if receiver is not None:
                await receiver.stop()

    async def _start_traps(self) -> TrapReceiver:
        assert self._traps is not None
        v2c = [s.community for s in self.switches if s.usm is None]
        users = [s.usm for s in self.switches if s.usm is not None]
        communities = self._traps.communities or tuple(dict.fromkeys(v2c))
        receiver = TrapReceiver(
            self._on_trap,
            host=self._traps.host,
            port=self._traps.port,
            communities=communities or (() if users else ("public",)),
            switches=await self._senders(),
            if_name_lookup=self._trap_if_name,
            users=users,
        )
        await receiver.start()
        self._trap_port, self._receiver = receiver.port, receiver
        return receiver

    async def _senders(self) -> dict[str, str]:
        """Trap source address -> switch name, for configured hosts given as names or addresses."""
        loop = asyncio.get_running_loop()
        senders: dict[str, str] = {}
        for switch in self.switches:
            senders.setdefault(switch.host, switch.name)
            try:
                infos = await loop.getaddrinfo(switch.host, None, type=socket.SOCK_DGRAM)
            except (OSError, UnicodeError):
                continue  # the poll reports the unresolvable host as a typed error
            for info in infos:
                senders.setdefault(str(info[4][0]), switch.name)
        return senders

    async def _poll_forever(self, target: SwitchTarget, client: SwitchClient) -> None:
        failures = 0
        wake = self._wake[target.name]
        while True:
            wake.clear()
            failures = await self._poll_once(target, client, failures)
            try:
                async with asyncio.timeout(backoff_delay(target.interval, failures, self._max_backoff)):
                    await wake.wait()
            except TimeoutError:
                pass

    async def _poll_once(self, target: SwitchTarget, client: SwitchClient, failures: int) -> int:
        """One poll; returns the new count of consecutive failures."""
        trapped = self._trapped[target.name]
        trapped.clear()
        try:
            snapshot = await client.poll()
        except DriverError as exc:
            self._call(self._on_error, target.name, exc)
            return failures + 1
        except Exception as exc:  # a driver bug: reported as typed, and polling goes on
            log.exception("polling %s failed unexpectedly", target.name)
            self._call(self._on_error, target.name, MalformedReply(target.name, f"{type(exc).__name__}: {exc}"))
            return failures + 1
        self._snapshots[target.name] = snapshot
        if target.usm is not None and client.engine_id is not None and self._receiver is not None:
            self._receiver.add_sender_engine(target.usm, client.engine_id)
        if failures and self._on_recovered is not None:
            self._call(self._on_recovered, target.name)
        for event in self._trackers[target.name].update(snapshot, trapped):
            self._call(self._on_event, event)
        return 0

    def _on_trap(self, event: LinkEvent) -> None:
        tracker = self._trackers.get(event.switch)
        if tracker is None:  # a sender we do not poll: pass it on, the port map decides
            self._call(self._on_event, event)  # type: ignore[arg-type]
            return
        self._trapped[event.switch].add(event.if_index)
        if tracker.link_trap(event):
            self._call(self._on_event, event)  # type: ignore[arg-type]
        self._wake[event.switch].set()  # look at its MAC table now rather than at the next interval

    def _trap_if_name(self, switch: str, if_index: int) -> str | None:
        tracker = self._trackers.get(switch)
        return tracker.if_name(if_index) if tracker is not None else None

    @staticmethod
    def _call(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("switch poller callback %r failed", callback)

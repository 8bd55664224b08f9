"""Slots cabled to a bench switch port: occupancy by MAC, from the switch poller's events.

A laptop on a switch port is identified by its MAC, recorded with its service-environment
endpoint (``ServiceEndpoint.mac``). A MAC seen on a mapped port occupies the slot with that device
and queues its job; a MAC nobody recorded (or several devices recorded) occupies it as an unknown
device, shown on the board for a technician, with no job. A second, different MAC on an occupied
port is refused like a second device in a dock. The occupant's MAC leaving, or the port's link
going down, frees the slot through the controller's own removal path (a running job is stopped).

A link drop during an expected reboot (``reboot_grace.py``) keeps the slot and its job; a device
not back when the reboot's window closes is released with that reason, which fails its job.

Switch failures arrive here too, through the same queue: one notice when a switch starts failing
(or fails differently), one when it answers again, however often the poller retries in between.
So do bench network laptops stuck at the network boot loader (``loader_watch``: Secure Boot): one
notice when stuck, one when past it; a switch-port slot waiting for that laptop says it too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, select

from factory.intake.views import endpoint_bound_to_a_boot, serials_with_mac
from factory.kernel.db.engine import session_scope
from factory.line import jobs, reboot_grace
from factory.line.bus import LineBus
from factory.line.loader_watch import (
    SECURE_BOOT_MARK,
    LoaderNotStarted,
    LoaderStarted,
    loader_started_note,
    secure_boot_note,
)
from factory.line.models import Slot
from factory.line.slots import Attachment, attach, lock_slot
from hardware_drivers.events import (
    DriverError,
    LinkDown,
    LinkUp,
    MacGone,
    MacSeen,
    failing,
)
from hardware_drivers.port_map import PortMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwitchFailed:
    """The poller could not read a switch (it keeps retrying)."""

    switch: str
    error: DriverError


@dataclass(frozen=True)
class SwitchRecovered:
    """A switch that was failing answered a poll again."""

    switch: str


NetworkEvent = LinkUp | LinkDown | MacSeen | MacGone | SwitchFailed | SwitchRecovered | LoaderNotStarted | LoaderStarted
NETWORK_EVENTS = (LinkUp, LinkDown, MacSeen, MacGone, SwitchFailed, SwitchRecovered, LoaderNotStarted, LoaderStarted)


def unknown_mac_note(mac: str, serials: Sequence[str]) -> str:
    """What the board says about a MAC that names no single device."""
    detail = f"recorded on {len(serials)} devices: {', '.join(serials)}" if serials else "not recorded on any device"
    return (
        f"unknown device MAC {mac} ({detail}): identify the laptop, record its endpoint with "
        f"'factory device endpoint SERIAL ... --mac {mac}', then reconnect its cable"
    )


def awaiting_enrolment_note(mac: str, serial: str | None) -> str:
    """What the board says about a laptop on a switch port that has not enrolled on this boot."""
    who = f"laptop {serial}" if serial else f"MAC {mac} (not recorded yet)"
    return (
        f"{who} is on the bench, waiting for its network boot: power it on (or restart it) to boot from "
        "the network; it enrols itself and its job starts on this slot"
    )


@dataclass(eq=False)
class NetworkSlots:
    """Runs on the controller's event thread, one event at a time. The callables are the
    controller's: the benches it runs, its notices, its removal path and its dispatcher's wake-up."""

    engine: Engine
    port_map: PortMap
    bus: LineBus
    _: KW_ONLY
    bench_ids: Callable[[], Sequence[int]]
    provision_name: str
    notice: Callable[[str], None]
    release: Callable[..., None]  # the controller's removal path (code, reason): stops the slot's job, frees it
    wake: Callable[[], None]
    network_boot: bool = False  # the agent serves network boot ([[netboot]]): laptops enrol themselves
    _failing: dict[str, type[DriverError]] = field(default_factory=dict, init=False)
    # slot code -> the end of its reboot window
    _reboot_timers: dict[str, threading.Timer] = field(default_factory=dict, init=False)

    def handle(self, event: NetworkEvent, detected: float) -> None:
        if isinstance(event, SwitchFailed):
            self._switch_failed(event)
            return
        if isinstance(event, SwitchRecovered):
            if self._failing.pop(event.switch, None) is not None:
                self.notice(f"switch {event.switch} answers again")
            return
        if isinstance(event, LoaderNotStarted | LoaderStarted):
            self._loader(event)
            return
        code = self.port_map.slot_for_switch_port(event.switch, event.if_name)
        if isinstance(event, LinkUp):
            self.bus.publish("link", slot=code, event="LinkUp")
        if code is None:
            return  # uplinks and ports no slot is cabled to
        if isinstance(event, LinkUp):
            self._back(code)
        elif isinstance(event, LinkDown):
            self._link_down(code)
        elif isinstance(event, MacSeen):
            self._mac_seen(code, event.mac, detected)
        elif isinstance(event, MacGone):
            self._mac_gone(code, event.mac)

    # ------------------------------------------------------------------ switches

    def _switch_failed(self, event: SwitchFailed) -> None:
        kind = type(event.error)
        if self._failing.get(event.switch) is kind:
            return  # still failing the same way: said already
        self._failing[event.switch] = kind
        words = failing(event.error)
        log.warning("switch %s %s: %s", event.switch, words, event.error.reason)
        self.notice(
            f"switch {event.switch} {words}: {event.error.reason}; "
            "its slots are not updated until it answers (retrying)"
        )

    # ------------------------------------------------------------------ network boot loader

    def _loader(self, event: LoaderNotStarted | LoaderStarted) -> None:
        """A laptop stuck at the network boot loader, or past it now: no job is started or failed."""
        with session_scope(self.engine) as s:
            serials = serials_with_mac(s, event.mac)
            who = f"laptop {serials[0]} (MAC {event.mac})" if len(serials) == 1 else f"MAC {event.mac}"
            stuck = isinstance(event, LoaderNotStarted)
            note = secure_boot_note(who, event.address, event.loader) if stuck else None
            codes = self._note_waiting_slots(s, event.mac, note)
        self.notice(f"bench network {event.network}: {note or loader_started_note(who)}")
        for code in codes:
            self.bus.publish("slot", slot=code, result="secure boot" if note else "awaiting network boot")

    def _note_waiting_slots(self, s: Session, mac: str, note: str | None) -> list[str]:
        """Our switch-port slots waiting for ``mac``'s network boot take ``note`` (stuck at the
        loader), or get their waiting note back (``None``); other notes (a conflict) stay."""
        codes = []
        for code in s.exec(select(Slot.code).where(Slot.attached_mac == mac)).all():
            slot = self._ours(s, code)
            if slot is None or slot.attachment_id is None or jobs.active_job_for_slot(s, slot.id or 0) is not None:
                continue
            waiting = awaiting_enrolment_note(mac, slot.attached_serial)
            if note is not None and slot.error == waiting:
                slot.error = note
            elif note is None and SECURE_BOOT_MARK in (slot.error or ""):
                slot.error = waiting
            else:
                continue
            s.add(slot)
            codes.append(code)
        return codes

    # ------------------------------------------------------------------ slots

    def _ours(self, session: Session, code: str) -> Slot | None:
        slot = lock_slot(session, code)
        return slot if slot.bench_id in self.bench_ids() else None

    def _mac_seen(self, code: str, mac: str, detected: float) -> None:
        with session_scope(self.engine) as s:
            slot = self._ours(s, code)
            if slot is None:
                return
            if slot.attachment_id is not None:
                if slot.attached_mac == mac:
                    # The occupant, seen again (another VLAN, a switch outage, or back from a reboot).
                    if reboot_grace.came_back(slot):
                        s.add(slot)
                        self._stop_timer(code)
                    return
                holds = slot.attached_serial or (f"MAC {slot.attached_mac}" if slot.attached_mac else "a device")
                slot.error = (
                    f"second device (MAC {mac}) on occupied slot {code} (holds {holds}): "
                    "unplug it; plug it in again when the slot is free"
                )
                s.add(slot)
                result = "conflict"
            else:
                result = self._occupy(s, slot, mac, detected)
        self.bus.publish("slot", slot=code, result=result)
        self.wake()

    def _occupy(self, s: Session, slot: Slot, mac: str, detected: float) -> str:
        """A free slot takes the MAC's laptop. Its job is queued here only when its endpoint was
        recorded by hand (``factory device endpoint``): a network-booting laptop's endpoint is bound
        to one boot (that boot's host key), so it waits, occupying the slot, for its next enrolment,
        which queues its job on this slot (``netboot_jobs``); its reboots and its leaving then count
        here like any other occupant's."""
        serials = serials_with_mac(s, mac)
        serial = serials[0] if len(serials) == 1 else None
        attach(s, slot, Attachment(serial, None, None, detected))
        slot.attached_mac = mac
        s.add(slot)
        if serial is not None and not endpoint_bound_to_a_boot(s, serial):
            jobs.create_job(s, slot, provision_name=self.provision_name, detected_epoch=detected)
            return "attached"
        if serial is not None or (self.network_boot and not serials):
            slot.error = awaiting_enrolment_note(mac, serial)
            return "awaiting network boot"
        slot.error = unknown_mac_note(mac, serials)
        return "unknown device"

    def _mac_gone(self, code: str, mac: str) -> None:
        with session_scope(self.engine) as s:
            slot = self._ours(s, code)
            if slot is None or slot.attachment_id is None:
                return
            if slot.attached_mac == mac and reboot_grace.in_window(slot, time.time()):
                return  # the occupant rebooting: its MAC leaves the table with the link
            if slot.attached_mac != mac:
                if slot.error and mac in slot.error:  # the refused second device left; the occupant stays
                    slot.error = self._occupant_note(s, slot)
                    s.add(slot)
                    self.bus.publish("slot", slot=code, result="conflict cleared")
                return
        self.release(code)

    # ------------------------------------------------------------------ expected reboots

    def _link_down(self, code: str) -> None:
        """Inside an expected reboot the slot stays; otherwise the device left."""
        with session_scope(self.engine) as s:
            slot = self._ours(s, code)
            left = reboot_grace.went_down(slot, time.time()) if slot is not None and slot.attachment_id else None
            if slot is not None and left is not None:
                s.add(slot)
        if left is None:
            self.release(code)
            return
        self.bus.publish("slot", slot=code, result="rebooting")
        timer = threading.Timer(left + 0.05, self._check_back, args=(code,))
        timer.daemon = True  # the window's end; a stopping agent does not wait for it
        previous, self._reboot_timers[code] = self._reboot_timers.get(code), timer
        if previous is not None:
            previous.cancel()
        timer.start()

    def _back(self, code: str) -> None:
        with session_scope(self.engine) as s:
            slot = self._ours(s, code)
            back = slot is not None and reboot_grace.came_back(slot)
            if back:
                s.add(slot)
        if back:
            self._stop_timer(code)
            self.bus.publish("slot", slot=code, result="back from reboot")

    def _stop_timer(self, code: str) -> None:
        timer = self._reboot_timers.pop(code, None)
        if timer is not None:
            timer.cancel()  # back: nothing to check when the window closes

    def _check_back(self, code: str) -> None:
        """The reboot window closed: a device still down fails its job with the reason."""
        self._reboot_timers.pop(code, None)
        try:
            with session_scope(self.engine) as s:
                slot = self._ours(s, code)
                reason = reboot_grace.overdue(slot, time.time()) if slot is not None else None
            if reason is not None:
                log.warning("slot %s: %s", code, reason)
                self.release(code, reason)
        except Exception:  # a timer thread: an agent that stopped (or lost its database) meanwhile
            log.exception("slot %s: checking the end of its reboot window failed", code)

    @staticmethod
    def _occupant_note(session: Session, slot: Slot) -> str | None:
        """The board's note about the occupant itself: only an unknown MAC has one."""
        if slot.attached_mac is None or slot.attached_serial is not None:
            return None
        return unknown_mac_note(slot.attached_mac, serials_with_mac(session, slot.attached_mac))

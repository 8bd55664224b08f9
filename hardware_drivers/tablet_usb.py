"""Which tablet a USB device on a bench hub is, and what state it arrived in, from what udev reports.

udev's ``usb_id`` builtin gives the vendor and product ids and ``ID_USB_INTERFACES``, the
class/subclass/protocol triple of every interface (``:ff4201:080650:``). That is enough to tell:

* an iPad talking usbmux (Apple 05ac, interface ff/fe/02), or in recovery (05ac:1281) or DFU
  (05ac:1227) mode, where no identity can be read and a technician must restart it;
* an Android tablet with USB debugging on (ADB interface ff/42/01), in the bootloader (fastboot,
  ff/42/03), or in MTP/PTP only (no ADB interface: debugging must be enabled, or the device handled
  through device management);
* a Windows tablet booted from the bench's service-environment stick: a Linux USB gadget
  (1d6b:0104, CDC NCM 02/0d/00) whose serial is the tablet's own, its eMMC reached over that link.

Anything else is not a tablet (a dock, a disk): ``classify`` returns ``None`` and it is handled as today.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hardware_drivers.events import UdevEvent

APPLE = "05ac"
APPLE_RECOVERY = frozenset({"1280", "1281", "1282", "1283"})
APPLE_DFU = frozenset({"1222", "1227"})
USBMUX = "fffe02"
ADB = "ff4201"
FASTBOOT = "ff4203"
MTP_OR_PTP = ("060101", "ffff00")
GADGET = ("1d6b", "0104")  # Linux Foundation multifunction composite gadget (the service environment)
CDC_NCM = ("020d00", "020600")  # NCM, or ECM on older service images
# Makers whose tablets the force buys (Android ADB interfaces come with the maker's vendor id).
ANDROID_VENDORS: dict[str, str] = {
    "18d1": "Google",
    "04e8": "Samsung",
    "17ef": "Lenovo",
    "05e0": "Zebra",
    "0fce": "Sony",
    "22b8": "Motorola",
    "2a70": "OnePlus",
    "0e8d": "MediaTek",
    "1004": "LG",
}


class Platform(StrEnum):
    IPADOS = "ipados"
    ANDROID = "android"
    WINDOWS = "windows"


class UsbMode(StrEnum):
    """What the tablet is doing on the bus, and so what the bench can do with it."""

    USBMUX = "usbmux"  # iPad, normal mode: lockdown reachable (pairing decides the rest)
    RECOVERY = "recovery"  # iPad recovery or DFU: no identity, no erase from here
    ADB = "adb"  # Android with USB debugging
    BOOTLOADER = "bootloader"  # Android in fastboot
    MTP_ONLY = "mtp-only"  # Android without USB debugging
    SERVICE_ENVIRONMENT = "service-environment"  # Windows tablet booted from the bench stick


# The modes in which identification can go on; the others hold the job with an action.
READY_MODES = frozenset({UsbMode.USBMUX, UsbMode.ADB, UsbMode.SERVICE_ENVIRONMENT})

ACTIONS: dict[UsbMode, str] = {
    UsbMode.RECOVERY: "the iPad is in recovery/DFU mode: restart it normally (hold top button), or erase it "
    "through device management; re-insert it when it shows the lock or setup screen",
    UsbMode.BOOTLOADER: "the tablet is in its bootloader: choose 'Start' to boot Android, then re-insert it",
    UsbMode.MTP_ONLY: "USB debugging is off: enable Developer options > USB debugging, or sanitise it through "
    "device management; re-insert it",
}


@dataclass(frozen=True, slots=True)
class TabletSighting:
    platform: Platform
    mode: UsbMode
    maker: str
    serial: str | None  # USB iSerial: the UDID (iPad), ro.serialno (Android), the tablet's serial (gadget)

    @property
    def ready(self) -> bool:
        return self.mode in READY_MODES

    @property
    def action(self) -> str | None:
        return ACTIONS.get(self.mode)


def interfaces(event: UdevEvent) -> tuple[str, ...]:
    """``ID_USB_INTERFACES`` as a tuple of six-hex-digit class/subclass/protocol strings."""
    raw = (event.usb_interfaces or "").lower()
    return tuple(part for part in raw.split(":") if len(part) == 6)


def classify(event: UdevEvent) -> TabletSighting | None:
    """The tablet ``event`` shows, or ``None`` if it is not one (only whole USB devices count)."""
    if event.subsystem != "usb" or event.devtype not in (None, "usb_device") or not event.vendor_id:
        return None
    vendor, product = event.vendor_id.lower(), (event.product_id or "").lower()
    found = interfaces(event)
    if vendor == APPLE:
        if product in APPLE_RECOVERY or product in APPLE_DFU:
            return TabletSighting(Platform.IPADOS, UsbMode.RECOVERY, "Apple", event.serial)
        if USBMUX in found:
            return TabletSighting(Platform.IPADOS, UsbMode.USBMUX, "Apple", event.serial)
        return None
    if (vendor, product) == GADGET and any(i in found for i in CDC_NCM):
        return TabletSighting(Platform.WINDOWS, UsbMode.SERVICE_ENVIRONMENT, event.vendor or "", event.serial)
    maker = ANDROID_VENDORS.get(vendor)
    if ADB in found:
        return TabletSighting(Platform.ANDROID, UsbMode.ADB, maker or event.vendor or vendor, event.serial)
    if FASTBOOT in found:
        return TabletSighting(Platform.ANDROID, UsbMode.BOOTLOADER, maker or event.vendor or vendor, event.serial)
    if maker is not None and any(i in found for i in MTP_OR_PTP):
        return TabletSighting(Platform.ANDROID, UsbMode.MTP_ONLY, maker, event.serial)
    return None

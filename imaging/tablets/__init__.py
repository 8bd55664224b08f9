"""Tablets: identification with the platforms' own tools and sanitisation by platform reset.

Everything goes through imaging's one command seam (``imaging.commands``): ``ios`` (libimobiledevice),
``android`` (adb), ``emmc`` (mmc-utils) and ``device_management`` (the services' HTTPS exchanges);
``identity`` reads a tablet (the "before" evidence), ``methods`` and ``reset`` plan and run its
sanitisation and return one ``EraseResult`` like every other erase.
"""

"""Sanitisation: the one erase round (service), its certificates, local and remote erase paths.

The standalone wipe (``factory wipe``: one target, no database) is exported here as well as from
``service``: importing ``service`` loads the database and SSH layers, which a one-shot wipe does not
use and whose start-up would count against dd in ``benchmarks/wipe.py``.
"""

from factory.sanitisation.local_wipe import run_wipe, write_certificate

__all__ = ["run_wipe", "write_certificate"]

"""Typed errors of provisioning.

Both subclass the kernel's errors (so the API and the CLI report them with their reason) and
keep their original built-in base, so existing ``except ValueError`` / ``except RuntimeError``
callers still catch them.
"""

from __future__ import annotations

from factory.kernel.errors import FactoryError, InvalidInput


class InvalidTarget(InvalidInput, ValueError):
    """A provisioning input is unusable; the message names the field."""


class ProvisionError(FactoryError, RuntimeError):
    """The job could not be started (bad job id, reused job dir, missing ansible-playbook)."""

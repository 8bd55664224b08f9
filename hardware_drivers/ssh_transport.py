"""One SSH transport to a device's service environment, opened only if the device proves it holds
the pinned host key, and before any credential is sent. There is no trust-on-first-use path."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import paramiko

from hardware_drivers.ssh import PinnedHostKey, fingerprint_of
from hardware_drivers.ssh_errors import HostKeyMismatch, RemoteAuthError, RemoteConnectError


@dataclass(frozen=True)
class SshTarget:
    """Where a device's service environment listens, and what it must prove to be."""

    host: str
    port: int
    username: str
    client_key_path: Path
    host_key: PinnedHostKey
    connect_timeout: float = 15.0
    keepalive_seconds: int = 15


def open_pinned_transport(target: SshTarget) -> paramiko.Transport:
    """An authenticated transport to ``target``.

    :raises RemoteAuthError: the client key cannot be loaded, or the server refuses it.
    :raises HostKeyMismatch: the server offered no key, or another key, than the pinned one.
    :raises RemoteConnectError: the server cannot be reached or the handshake fails.
    """
    try:
        pkey = paramiko.PKey.from_path(target.client_key_path)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise RemoteAuthError(f"cannot load client key {target.client_key_path}: {exc}") from exc
    where = f"{target.host}:{target.port}"
    try:
        sock = socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
    except OSError as exc:
        raise RemoteConnectError(f"cannot reach {where}: {exc}") from exc
    transport = paramiko.Transport(sock)
    try:
        _check_host_key(transport, target, where)
        try:
            transport.auth_publickey(target.username, pkey)
        except paramiko.AuthenticationException as exc:
            raise RemoteAuthError(f"{where} refused key auth for {target.username}: {exc}") from exc
        except paramiko.SSHException as exc:
            raise RemoteConnectError(f"SSH authentication with {where} failed: {exc}") from exc
        transport.set_keepalive(target.keepalive_seconds)
        return transport
    except BaseException:
        transport.close()
        raise


def _check_host_key(transport: paramiko.Transport, target: SshTarget, where: str) -> None:
    """Negotiate only the pinned key's algorithms, then compare the presented key byte for byte."""
    transport.get_security_options().key_types = target.host_key.algorithms
    try:
        transport.start_client(timeout=target.connect_timeout)
    except paramiko.SSHException as exc:
        if "host key" in str(exc).lower():
            offered = f"no {target.host_key.key_type} host key"
            raise HostKeyMismatch(where, target.host_key.fingerprint, offered) from exc
        raise RemoteConnectError(f"SSH handshake with {where} failed: {exc}") from exc
    presented = transport.get_remote_server_key()
    if presented.get_name() != target.host_key.key_type or presented.asbytes() != target.host_key.blob:
        raise HostKeyMismatch(where, target.host_key.fingerprint, fingerprint_of(presented.asbytes()))

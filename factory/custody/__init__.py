"""Custody workflows: every hand-off of a device is a ``change_state`` call with its evidence.

One module per workflow (issue, swap, vehicles, consignments, redistribution, disposal,
destruction, waves); ``documents`` stores evidence bytes and hashes them, ``pdf`` renders the
paper that travels with devices (manifests, transfer notes, waste transfer notes).
"""

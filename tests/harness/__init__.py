"""Real test doubles (PostgreSQL, sshd, snmpsim, QEMU, FUSE) shared by the suite."""

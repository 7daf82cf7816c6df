"""Which of several server processes holds a connection, read from /proc (Linux)."""

import os
import pathlib


def serving_pid(client, pids):
    """The process of ``pids`` that accepted ``client``'s connection, or None.

    With several processes on one listening socket, the kernel hands each
    connection to one of them: its server side is a socket inode in that
    process's file descriptors.
    """
    local_port, server_port = client.getsockname()[1], client.getpeername()[1]
    inode = None
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (int(fields[1].split(":")[1], 16) == server_port
                and int(fields[2].split(":")[1], 16) == local_port):
            inode = fields[9]
    for pid in pids:
        for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except FileNotFoundError:
                continue
    return None

"""Redis with Sentinel for tests: a primary, a replica and sentinels on local ports.

The fixture ``redis_sentinel`` yields a :class:`SentinelSetup`. Its ``url`` is
the app's own ``redis+sentinel://`` form, so subprocesses (workers, other
"hosts") reach the same servers through ``VEXPENSES_REDIS_URL``.
"""

import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

from .workers import wait_for

__all__ = ["SentinelSetup", "redis_sentinel"]

MASTER = "vexpenses"
SENTINELS = 3
QUORUM = 2
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000

_SERVER_CONF = """\
bind 127.0.0.1
port {port}
dir {dir}
save ""
appendonly no
protected-mode no
repl-diskless-sync yes
repl-diskless-sync-delay 0
enable-debug-command local
"""

_SENTINEL_CONF = """\
bind 127.0.0.1
port {port}
dir {dir}
protected-mode no
sentinel monitor {master} 127.0.0.1 {primary} {quorum}
sentinel down-after-milliseconds {master} {down_after}
sentinel failover-timeout {master} {failover_timeout}
sentinel parallel-syncs {master} 1
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SentinelSetup:
    """A primary, one replica and three sentinels (quorum 2), each a ``redis-server``.

    ``url`` names the sentinels and the master (``redis+sentinel://.../vexpenses/0``);
    ``primary_port``, ``replica_port`` and ``sentinel_ports`` are the ports as
    started (after a failover the replica's port is the master's).
    """

    def __init__(self, directory, db=0):
        self.directory = directory
        self.master = MASTER
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(SENTINELS)]
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        self.url = f"redis+sentinel://{hosts}/{MASTER}/{db}"
        self.processes = {}  # port -> Popen

    def start(self, timeout=30):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed; the Sentinel tests need it")
        self._server(self.primary_port)
        self._server(self.replica_port, f"replicaof 127.0.0.1 {self.primary_port}\n")
        for port in self.sentinel_ports:
            self._sentinel(port)
        if not wait_for(self._ready, timeout, interval=0.2):
            self.stop()
            raise RuntimeError(f"the Sentinel setup did not come up; logs in {self.directory}")
        return self

    def _start(self, port, conf, *args):
        folder = self.directory / str(port)
        folder.mkdir(exist_ok=True)
        path = folder / "redis.conf"
        path.write_text(conf)
        log = open(folder / "log", "w")
        with log:
            self.processes[port] = subprocess.Popen(
                ["redis-server", str(path), *args], stdout=log, stderr=subprocess.STDOUT,
                cwd=folder)

    def _server(self, port, extra=""):
        folder = self.directory / str(port)
        self._start(port, _SERVER_CONF.format(port=port, dir=folder) + extra)

    def _sentinel(self, port):
        folder = self.directory / str(port)
        self._start(port, _SENTINEL_CONF.format(
            port=port, dir=folder, master=MASTER, primary=self.primary_port, quorum=QUORUM,
            down_after=DOWN_AFTER_MS, failover_timeout=FAILOVER_TIMEOUT_MS), "--sentinel")

    def client(self, port):
        return redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1)

    def _ready(self):
        """The replica is in sync, and every sentinel knows it and the other sentinels."""
        try:
            with self.client(self.replica_port) as replica:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
            for port in self.sentinel_ports:
                with self.client(port) as sentinel:
                    master = sentinel.sentinel_master(MASTER)
                    replicas = sentinel.sentinel_slaves(MASTER)
                    if master["num-other-sentinels"] < SENTINELS - 1:
                        return False
                    if not any(r["port"] == self.replica_port and not r["is_disconnected"]
                               for r in replicas):
                        return False
        except redis.RedisError:
            return False
        return True

    def master_address(self):
        """(host, port) of the master as the first sentinel that answers reports it."""
        for port in self.sentinel_ports:
            try:
                with self.client(port) as sentinel:
                    host, master_port = sentinel.sentinel_get_master_addr_by_name(MASTER)
                    return host.decode() if isinstance(host, bytes) else host, int(master_port)
            except (redis.RedisError, TypeError):
                continue
        return None

    def cut_replica(self, seconds=1.0):
        """Cut the replica off the primary for about ``seconds``: writes the primary
        takes meanwhile exist nowhere else, as under replication lag.

        The replica sleeps (DEBUG SLEEP) while the primary drops its link, so
        that it cannot reconnect and catch up before the primary is killed.
        """
        def sleep():
            with redis.Redis(port=self.replica_port, socket_timeout=seconds + 5) as replica:
                replica.execute_command("DEBUG", "SLEEP", seconds)

        thread = threading.Thread(target=sleep, daemon=True)
        thread.start()
        # Asleep once a PING goes unanswered: a fixed pause lost that race on a
        # busy machine, and the replica then caught up after all.
        # (A plain socket: redis-py would retry a timeout, with backoff.)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.create_connection(("127.0.0.1", self.replica_port), timeout=1) as probe:
                probe.settimeout(0.05)
                probe.sendall(b"PING\r\n")
                try:
                    probe.recv(64)
                except TimeoutError:
                    break
            time.sleep(0.01)
        with self.client(self.primary_port) as primary:
            primary.client_kill_filter(_type="replica")
        return thread

    def kill_primary(self):
        """SIGKILL the primary as started: no shutdown, no last save, no goodbye."""
        proc = self.processes[self.primary_port]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def wait_for_failover(self, timeout=30):
        """Return (host, port) of the new master once a sentinel reports it.

        The new master also answers as one: a sentinel reports the promotion
        just before ``REPLICAOF NO ONE`` has taken effect on the replica.
        """
        def promoted():
            address = self.master_address()
            if address is None or address[1] == self.primary_port:
                return None
            try:
                with self.client(address[1]) as server:
                    if server.info("replication").get("role") != "master":
                        return None
            except redis.RedisError:
                return None
            return address

        address = wait_for(promoted, timeout, interval=0.1)
        if not address:
            raise TimeoutError(f"no sentinel reported a new master within {timeout}s")
        return address

    def stop(self):
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.processes.values():
            proc.wait()


@pytest.fixture
def redis_sentinel(tmp_path_factory):
    """A fresh primary, replica and three sentinels for one test; killed at teardown.

    Yields a :class:`SentinelSetup`: ``url``, ``kill_primary()``,
    ``wait_for_failover(timeout)``, ``cut_replica(seconds)``,
    ``master_address()`` and the ports.
    """
    setup = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    setup.start()
    try:
        yield setup
    finally:
        setup.stop()


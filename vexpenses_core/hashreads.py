"""HMGET on one plain socket per thread: the identity cache's read on every request.

redis-py's client costs about 45 µs of CPU per command (pool checkout and
health check, retry wrapper, packing, hooks) and, with a socket timeout, a
``poll`` before each send and receive. Every one of those system calls
releases the GIL, and under load each release hands the GIL to another
waitress thread. This reader sends one command and reads one reply on a
blocking socket whose timeout is set in the kernel (``SO_RCVTIMEO``): two
system calls and about 7 µs.

It reads only, and only where it can know the server without redis-py: a
plain ``redis://`` or ``unix://`` client. For TLS and Sentinel (which has to
follow the master), :func:`reader_for` returns None and the client is used.
"""

import contextlib
import os
import socket
import struct
import threading

import redis
from redis.connection import Connection, UnixDomainSocketConnection

RECV_BYTES = 65536


def reader_for(client):
    """A :class:`HashReader` for ``client``'s server and timeouts, or None to use the client."""
    pool = getattr(client, "connection_pool", None)
    if pool is None or type(pool) is not redis.ConnectionPool:
        return None
    kwargs = pool.connection_kwargs
    if pool.connection_class is Connection:
        address = (socket.AF_INET, (kwargs.get("host", "localhost"), kwargs.get("port", 6379)))
    elif pool.connection_class is UnixDomainSocketConnection:
        address = (socket.AF_UNIX, kwargs["path"])
    else:
        return None
    return HashReader(address, kwargs.get("db") or 0, kwargs.get("username"),
                      kwargs.get("password"), kwargs.get("socket_timeout"),
                      kwargs.get("socket_connect_timeout"))


class HashReader:
    """``hmget(key, *fields)`` like redis-py's, raising redis-py's errors."""

    def __init__(self, address, db, username, password, timeout, connect_timeout=None):
        self.family, self.address = address
        hello = []
        if password:
            hello.append(_command(b"AUTH", *([username] if username else []), password))
        if db:
            hello.append(_command(b"SELECT", db))
        self.hello = b"".join(hello), len(hello)
        self.timeout = timeout or 5
        self.connect_timeout = connect_timeout or self.timeout
        self.local = threading.local()

    def hmget(self, key, *fields):
        request = _command(b"HMGET", key, *fields)
        conn = self._connection()
        try:
            return conn.ask(request)
        except redis.ConnectionError:
            if conn.fresh:
                raise
        # A kept connection the server closed meanwhile (a restart, an idle
        # timeout): a read is safe to ask again, once, on a new one.
        return self._connection().ask(request)

    def _connection(self):
        conn = getattr(self.local, "conn", None)
        if conn is not None and conn.pid == os.getpid() and conn.sock is not None:
            conn.fresh = False
            return conn
        conn = self.local.conn = _Connection(self)
        return conn


class _Connection:
    def __init__(self, reader):
        self.sock = None
        self.pid = os.getpid()
        self.fresh = True
        self.buffer = b""
        try:
            if reader.family == socket.AF_UNIX:
                with contextlib.ExitStack() as on_error:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    on_error.callback(sock.close)
                    sock.settimeout(reader.connect_timeout)
                    sock.connect(reader.address)
                    on_error.pop_all()
            else:
                sock = socket.create_connection(reader.address, timeout=reader.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError as exc:
            raise redis.TimeoutError("Timeout connecting to Redis") from exc
        except OSError as exc:
            raise redis.ConnectionError(f"Error connecting to Redis: {exc.strerror}") from exc
        # Blocking, with the timeout kept by the kernel: no poll() before each call.
        sock.settimeout(None)
        seconds = int(reader.timeout)
        limit = struct.pack("ll", seconds, int((reader.timeout - seconds) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
        self.sock = sock
        request, replies = reader.hello
        if replies:
            try:
                self.ask(request, replies)
            except redis.ResponseError as exc:  # a wrong password, a database out of range
                self.close()
                raise redis.AuthenticationError(str(exc)) from exc

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # Kept per thread: it goes when its thread or its reader does, closed.
    __del__ = close

    def ask(self, request, replies=1):
        """Send ``request`` and return the last of its ``replies``; an error
        reply raises ResponseError and leaves the connection usable."""
        try:
            self.sock.sendall(request)
            for _ in range(replies):
                reply = self._reply()
        except BlockingIOError as exc:  # SO_RCVTIMEO ran out
            self.close()
            raise redis.TimeoutError("Timeout reading from Redis") from exc
        except (OSError, redis.ConnectionError) as exc:
            self.close()
            if isinstance(exc, redis.ConnectionError):
                raise
            raise redis.ConnectionError(f"Error talking to Redis: {exc.strerror}") from exc
        if isinstance(reply, redis.ResponseError):
            raise reply
        return reply

    def _line(self):
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line, self.buffer = self.buffer[:end], self.buffer[end + 2:]
                return line
            self._fill()

    def _fill(self):
        data = self.sock.recv(RECV_BYTES)
        if not data:
            raise redis.ConnectionError("Connection closed by Redis")
        self.buffer += data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buffer) < size + 2:
                self._fill()
            value, self.buffer = self.buffer[:size], self.buffer[size + 2:]
            return value
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            return redis.ResponseError(rest.decode("utf-8", "replace"))
        self.close()
        raise redis.ConnectionError("Redis answered with something that is not RESP2")


def _command(*parts):
    encoded = [part if isinstance(part, bytes) else str(part).encode() for part in parts]
    return b"".join([b"*%d\r\n" % len(encoded),
                     *(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded)])

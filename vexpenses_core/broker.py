"""Taskiq brokers chosen by settings.

``redis``: a Redis stream with a consumer group. A message is acknowledged
only after its task has finished, so a task whose worker died is delivered
again to another worker (at-least-once).

``inprocess``: tasks run in a thread pool of the web process itself, so the
embedded default needs no server.
"""

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import InMemoryBroker, TaskiqMiddleware
from taskiq.acks import AckableMessage
from taskiq_redis import RedisStreamBroker

from .logging import request_id_var
from .redis_client import (
    ReplicaWait,
    SentinelTarget,
    async_pool,
    parse_redis_url,
    replica_wait_ms,
)

log = logging.getLogger(__name__)


class ReliableRedisStreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, with two fixes for at-least-once delivery.

    - Messages left pending by a dead worker are reclaimed on a timer, not
      only after new messages arrive: the upstream ``listen`` skips the
      reclaim step whenever the stream is idle.
    - While a task runs, its worker claims the message again every third of
      the redelivery timeout, which resets the message's idle time: a task
      that runs longer than the timeout is never handed to a second worker
      while the first is still alive.
    """

    def __init__(self, url, *, redelivery_seconds=60, timeout=5, **kwargs):
        kwargs.setdefault("xread_count", 1)
        # A blocking read must end well before the socket timeout.
        kwargs.setdefault("xread_block", int(min(1.0, timeout / 2) * 1000))
        # The parent builds a pool from a plain URL only; ours below also
        # speaks redis+sentinel:// and bounds every wait by ``timeout``.
        super().__init__(
            "redis://",
            idle_timeout=int(redelivery_seconds * 1000),
            unacknowledged_lock_timeout=max(redelivery_seconds, 5),
            **kwargs,
        )
        self.connection_pool = async_pool(url, timeout)
        self.durable = isinstance(parse_redis_url(url), SentinelTarget)
        self.redelivery_seconds = redelivery_seconds
        self._replica_wait = ReplicaWait()
        self._in_flight = {}  # message id -> stream
        self._heartbeat = None

    async def startup(self):
        await super().startup()
        if self.is_worker_process and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._keep_claimed())

    async def shutdown(self):
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        await super().shutdown()

    async def kick(self, message):
        """Add the message to the stream; through Sentinel, WAIT for a replica.

        A message only the killed master had is lost with it; the outbox
        keeps its row (and sends it again) unless the send returns.
        """
        queue_name = message.labels.get("queue_name") or self.queue_name
        async with Redis(connection_pool=self.connection_pool) as conn:
            if self.durable and self._replica_wait.suspect():
                self._replica_wait.probe(await conn.info("replication"))
            pipe = conn.pipeline(transaction=False)
            pipe.xadd(queue_name, {b"data": message.message},
                      maxlen=self.maxlen, approximate=self.approximate)
            if not self.durable or not self._replica_wait.needed():
                await pipe.execute()
                return
            wait_ms = replica_wait_ms(self.connection_pool.connection_kwargs["socket_timeout"])
            pipe.execute_command("WAIT", 1, wait_ms)
            pipe.info("replication")
            _, acked, info = await pipe.execute()
        self._replica_wait.judge(acked, info, wait_ms)

    def _ack_generator(self, id, queue_name):
        self._in_flight[id] = queue_name

        async def _ack():
            # Acknowledge and delete in one round trip: a finished task's
            # message has no further use, and the stream must not grow forever.
            async with Redis(connection_pool=self.connection_pool) as conn:
                pipe = conn.pipeline(transaction=True)
                pipe.xack(queue_name, self.consumer_group_name, id)
                pipe.xdel(queue_name, id)
                await pipe.execute()
            self._in_flight.pop(id, None)

        return _ack

    async def _keep_claimed(self):
        interval = max(self.redelivery_seconds / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    for msg_id, stream in list(self._in_flight.items()):
                        await conn.xclaim(
                            stream, self.consumer_group_name, self.consumer_name,
                            min_idle_time=0, message_ids=[msg_id], justid=True,
                        )
            except Exception:  # keep beating; the next round may reach Redis
                log.warning("could not renew claims on running tasks", exc_info=True)

    async def listen(self):
        async with Redis(connection_pool=self.connection_pool) as conn:
            while True:
                try:
                    for message in await self._reclaim(conn):
                        yield message
                    fetched = await conn.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        noack=False,
                        count=self.count,
                    )
                except (RedisError, OSError) as exc:
                    # Redis restarted, or the stream or group was deleted: wait,
                    # declare the group again and go on, rather than stop consuming.
                    log.warning("lost the task stream (%s); reconnecting", exc)
                    await asyncio.sleep(1)
                    await self._redeclare()
                    continue
                for stream, messages in fetched or []:
                    for msg_id, data in messages:
                        yield AckableMessage(
                            data=data[b"data"],
                            ack=self._ack_generator(id=msg_id, queue_name=stream),
                        )

    async def _redeclare(self):
        try:
            await self._declare_consumer_group()
        except (RedisError, OSError):
            pass  # still down; the next round tries again

    async def _reclaim(self, conn):
        _, claimed, _ = await conn.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.count or 1,
        )
        messages = []
        for msg_id, data in claimed:
            if not data:  # deleted from the stream meanwhile
                continue
            log.warning("redelivering task message %s left by a stopped worker", msg_id)
            messages.append(
                AckableMessage(
                    data=data[b"data"],
                    ack=self._ack_generator(id=msg_id, queue_name=self.queue_name),
                )
            )
        return messages


class RequestIdMiddleware(TaskiqMiddleware):
    """A task runs under the request id of the request that queued it."""

    def pre_execute(self, message):
        request_id_var.set(message.labels.get("request_id") or None)
        return message


def make_broker(settings):
    """Return the broker that the settings ask for."""
    if settings["vexpenses.tasks.broker"] == "redis":
        broker = ReliableRedisStreamBroker(
            settings["vexpenses.redis_url"],
            timeout=settings["vexpenses.redis_timeout"],
            queue_name=settings["vexpenses.tasks.queue"],
            consumer_group_name=settings["vexpenses.tasks.queue"] + ":workers",
            redelivery_seconds=settings["vexpenses.tasks.redelivery_seconds"],
            # A group created late still sees every message not yet done:
            # finished ones are deleted from the stream on acknowledgement.
            consumer_id="0",
        )
    else:
        broker = InMemoryBroker(sync_tasks_pool_size=settings["vexpenses.worker.threads"])
    return broker.with_middlewares(RequestIdMiddleware())

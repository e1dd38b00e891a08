"""The scaler reads a real RabbitMQ queue and patches a Deployment in kmock."""

from __future__ import annotations

import aio_pika
import kmock
import kopf
import pytest

from nazar_common.errors import TransientError
from nazar_common.messaging.topology import (
    SAMPLES_EXCHANGE,
    analyzer_partitions,
    declare_topology,
    partition_routing_key,
    partitions_declarer,
)
from nazar_operator.queue import QueueDepth
from nazar_operator.scaler import Scaler
from nazar_operator.scaling import ScalingPolicy

DEPLOYMENTS = "apps/v1/deployments"
PARTITIONS = 8  # the default, as the operator processes of other tests read it
QUEUES = analyzer_partitions(PARTITIONS)
NAMES = [q.name for q in QUEUES]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def publish(amqp_url: str, count: int) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchanges = await declare_topology(channel)
        await partitions_declarer(PARTITIONS)(channel)
        for i in range(count):  # spread over the partitions
            await exchanges[SAMPLES_EXCHANGE].publish(
                aio_pika.Message(body=b"{}", message_id=str(i)),
                routing_key=partition_routing_key(i % PARTITIONS),
            )
    finally:
        await connection.close()


async def purge(amqp_url: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for spec in QUEUES:
            queue = await channel.declare_queue(spec.name, passive=True)
            await queue.purge()
    finally:
        await connection.close()


def scale_patches(server: kmock.KubernetesEmulator) -> list[object]:
    return [
        r.data for r in server
        if r.method.value == "PATCH" and r.name == "nazar-analyzer" and r.subresource == "scale"
    ]


async def test_scaler_follows_queue_depth(
    kmock: kmock.KubernetesEmulator, fresh_amqp_url: str
) -> None:
    kmock.resources[DEPLOYMENTS] = kmock.ResourceInfo(
        kind="Deployment", namespaced=True, subresources={"scale"},
        verbs={"get", "patch", "list"},
    )
    kmock.objects[DEPLOYMENTS, "nazar", "nazar-analyzer"] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nazar-analyzer", "namespace": "nazar"},
        "spec": {"replicas": 1},
    }
    # Before the topology exists the depth cannot be read: a transient error.
    missing = QueueDepth(fresh_amqp_url, NAMES)
    try:
        with pytest.raises(TransientError, match=NAMES[0]):
            await missing.read()
    finally:
        await missing.aclose()
    await publish(fresh_amqp_url, 35)

    async def connect() -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=str(kmock.url).rstrip("/"))

    clock = Clock()
    depth = QueueDepth(fresh_amqp_url, NAMES)  # the partitions' total
    policy = ScalingPolicy(min_replicas=1, max_replicas=5, messages_per_replica=10,
                           up_cooldown=30, down_cooldown=300)
    scaler = Scaler(depth, connect, "nazar", "nazar-analyzer", policy, clock=clock)
    try:
        assert await depth.read() == 35
        decision = await scaler.tick()
        assert decision.replicas == 4
        assert scale_patches(kmock) == [{"spec": {"replicas": 4}}]
        assert kmock.objects[DEPLOYMENTS, "nazar", "nazar-analyzer"]["spec"]["replicas"] == 4

        # More work within the cooldown: no change yet.
        await publish(fresh_amqp_url, 20)
        clock.now += 10
        assert (await scaler.tick()).reason == "cooldown"
        assert len(scale_patches(kmock)) == 1

        # After the cooldown it scales up to the maximum (55 batches want 6).
        clock.now += 30
        assert (await scaler.tick()).replicas == 5
        assert scale_patches(kmock)[-1] == {"spec": {"replicas": 5}}

        # Drained: it scales down only after the longer down cooldown, to the minimum.
        await purge(fresh_amqp_url)
        clock.now += 60
        assert (await scaler.tick()).reason == "cooldown"
        clock.now += 300
        assert (await scaler.tick()).replicas == 1
        assert kmock.objects[DEPLOYMENTS, "nazar", "nazar-analyzer"]["spec"]["replicas"] == 1
        assert len(scale_patches(kmock)) == 3
    finally:
        await scaler.aclose()

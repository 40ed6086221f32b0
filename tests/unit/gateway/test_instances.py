"""The gateway's view of instances: up while heartbeats come, down once three are missed,
forgotten after a while or at once when one says it leaves; late and replayed ones change nothing."""

import asyncio
from datetime import UTC, datetime, timedelta

from services.common.events import InstanceHeartbeat
from services.gateway.status.instances import Instances

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def beat(instance: str, at_s: float, leaving: bool = False) -> InstanceHeartbeat:
    return InstanceHeartbeat(
        app_id="inference",
        instance=instance,
        started_at=T0,
        at=T0 + timedelta(seconds=at_s),
        interval_s=5,
        leaving=leaving,
    )


class Clock:
    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> datetime:
        return T0 + timedelta(seconds=self.s)


def hear(instances: Instances, *beats: InstanceHeartbeat) -> None:
    for b in beats:
        asyncio.run(instances.heard({}, b))


def test_an_instance_is_up_while_it_beats_and_down_after_three_missed_beats():
    clock = Clock()
    instances = Instances(forget_after_s=300, now=clock)
    hear(instances, beat("a:1", 0), beat("b:2", 0))
    clock.s = 10
    hear(instances, beat("a:1", 10))
    assert [(i["instance"], i["up"]) for i in instances.of("inference")] == [("a:1", True), ("b:2", True)]
    clock.s = 16  # b silent for 16 s: more than 3 x 5 s
    down = {i["instance"]: i for i in instances.of("inference")}
    assert down["a:1"]["up"] and not down["b:2"]["up"]
    assert down["b:2"]["error"] == "no heartbeat for 16s: the instance or its sidecar is down"
    assert instances.of("training") == []


def test_an_instance_that_leaves_is_forgotten_and_a_silent_one_after_a_while():
    clock = Clock()
    instances = Instances(forget_after_s=60, now=clock)
    hear(instances, beat("a:1", 0), beat("b:2", 0))
    hear(instances, beat("a:1", 1, leaving=True))
    assert [i["instance"] for i in instances.of("inference")] == ["b:2"]
    clock.s = 61
    assert instances.of("inference") == []


def test_late_and_replayed_heartbeats_do_not_make_a_dead_instance_look_alive():
    clock = Clock()
    clock.s = 1000
    instances = Instances(forget_after_s=300, now=clock)
    hear(instances, beat("old:1", 0))  # replayed from the stream's start: older than the window
    assert instances.of("inference") == []
    hear(instances, beat("a:1", 990), beat("a:1", 900))  # the later one wins, whatever the order
    (only,) = instances.of("inference")
    assert only["last_heartbeat_s"] == 10 and only["up"]

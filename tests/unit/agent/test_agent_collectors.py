from __future__ import annotations

import time
from collections import namedtuple

import psutil
import pytest

from nazar_agent.collectors import (
    SystemCollector,
    cpu_samples,
    cpu_time_shares,
    disk_usage_samples,
    is_real_filesystem,
    memory_samples,
)
from nazar_agent.samples import LABEL_NAME_RE, METRIC_NAME_RE, Sample

CpuTimes = namedtuple(
    "CpuTimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)
Usage = namedtuple("Usage", "total used free percent")
VirtualMemory = namedtuple("VirtualMemory", "total available used free percent")
Swap = namedtuple("Swap", "total used free percent")

RATE_METRICS = {
    "disk.read_bytes_per_sec",
    "disk.write_bytes_per_sec",
    "disk.read_ops_per_sec",
    "disk.write_ops_per_sec",
    "net.rx_bytes_per_sec",
    "net.tx_bytes_per_sec",
    "net.rx_errors_per_sec",
    "net.tx_errors_per_sec",
    "net.rx_drops_per_sec",
    "net.tx_drops_per_sec",
}
CPU_METRICS = {
    "cpu.usage_percent",
    "cpu.iowait_percent",
    "cpu.user_percent",
    "cpu.system_percent",
}
GAUGES = {
    "system.load1",
    "system.load5",
    "system.load15",
    "mem.used_percent",
    "mem.used_bytes",
    "mem.available_bytes",
    "mem.total_bytes",
    "swap.used_percent",
    "swap.used_bytes",
    "disk.used_percent",
    "disk.used_bytes",
    "disk.free_bytes",
}


def cpu(**fields: float) -> CpuTimes:
    values = dict.fromkeys(CpuTimes._fields, 0.0)
    values.update(fields)
    return CpuTimes(**values)


def by_name(samples: list[Sample]) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.metric, []).append(sample)
    return grouped


@pytest.fixture(scope="module")
def two_collections() -> tuple[list[Sample], list[Sample]]:
    collector = SystemCollector()
    first = collector.collect()
    time.sleep(0.25)
    second = collector.collect()
    return first, second


# --- real psutil on this machine ---------------------------------------------------


def test_names_match_the_patterns(two_collections: tuple[list[Sample], list[Sample]]) -> None:
    for sample in two_collections[0] + two_collections[1]:
        assert METRIC_NAME_RE.match(sample.metric), sample
        assert all(LABEL_NAME_RE.match(name) for name in sample.labels), sample
        assert all(isinstance(value, str) for value in sample.labels.values()), sample
        assert sample.is_valid(), sample


def test_first_collection_has_gauges_but_no_rates(
    two_collections: tuple[list[Sample], list[Sample]],
) -> None:
    names = set(by_name(two_collections[0]))
    assert not names & (RATE_METRICS | CPU_METRICS)
    assert {"system.load1", "mem.used_percent", "mem.total_bytes", "swap.used_bytes"} <= names


def test_second_collection_has_the_catalogue(
    two_collections: tuple[list[Sample], list[Sample]],
) -> None:
    names = set(by_name(two_collections[1]))
    expected = CPU_METRICS | GAUGES | {m for m in RATE_METRICS if m.startswith("net.")}
    if not psutil.disk_partitions(all=False):
        expected -= {"disk.used_percent", "disk.used_bytes", "disk.free_bytes"}
    if not hasattr(psutil.cpu_times(), "iowait"):
        expected.discard("cpu.iowait_percent")
    assert expected <= names, expected - names
    assert names <= CPU_METRICS | GAUGES | RATE_METRICS


def test_values_are_plausible(two_collections: tuple[list[Sample], list[Sample]]) -> None:
    samples = two_collections[1]
    grouped = by_name(samples)
    for sample in samples:
        if sample.metric.endswith("_percent"):
            assert 0.0 <= sample.value <= 100.0, sample
        else:
            assert sample.value >= 0.0, sample
    cores = {s.labels["cpu"] for s in grouped["cpu.usage_percent"]}
    assert cores == {"total"} | {str(i) for i in range(psutil.cpu_count() or 1)}
    total_mem = grouped["mem.total_bytes"][0].value
    assert total_mem == psutil.virtual_memory().total
    assert 0 < grouped["mem.available_bytes"][0].value <= total_mem
    assert grouped["mem.used_bytes"][0].value <= total_mem
    for sample in grouped.get("disk.used_percent", []):
        assert sample.labels["mount"].startswith("/")
    assert len({s.timestamp for s in samples}) == 1
    assert abs(samples[0].timestamp - time.time()) < 60


def test_rates_are_non_negative(two_collections: tuple[list[Sample], list[Sample]]) -> None:
    rates = [s for s in two_collections[1] if s.metric in RATE_METRICS]
    assert rates
    for sample in rates:
        assert sample.value >= 0.0, sample
        label = "device" if sample.metric.startswith("disk.") else "interface"
        assert set(sample.labels) == {label}


def test_pseudo_filesystems_are_skipped(
    two_collections: tuple[list[Sample], list[Sample]],
) -> None:
    mounts = {s.labels["mount"] for s in two_collections[1] if "mount" in s.labels}
    assert not any(m.startswith(("/proc", "/sys", "/dev")) for m in mounts)
    devices = {s.labels["device"] for s in two_collections[1] if "device" in s.labels}
    assert not any(d.startswith(("loop", "ram")) for d in devices)


# --- pure functions with synthetic readings ------------------------------------------


def test_cpu_shares_from_deltas() -> None:
    before = cpu(user=100, system=50, idle=800, iowait=50)
    after = cpu(user=130, system=60, idle=850, iowait=60)  # 100 ticks elapsed
    shares = cpu_time_shares(before, after)
    assert shares is not None
    assert shares["usage"] == pytest.approx(40.0)
    assert shares["user"] == pytest.approx(30.0)
    assert shares["system"] == pytest.approx(10.0)
    assert shares["iowait"] == pytest.approx(10.0)


def test_cpu_guest_time_is_not_counted_twice() -> None:
    before = cpu(user=0, idle=0)
    after = cpu(user=50, guest=50, idle=50)  # guest is already inside user
    shares = cpu_time_shares(before, after)
    assert shares is not None
    assert shares["usage"] == pytest.approx(50.0)


def test_cpu_counter_reset_or_no_time_gives_nothing() -> None:
    assert cpu_time_shares(cpu(user=100, idle=100), cpu(user=5, idle=200)) is None
    assert cpu_time_shares(cpu(user=1, idle=1), cpu(user=1, idle=1)) is None


def test_cpu_samples_labels() -> None:
    before = [cpu(user=0, idle=0), cpu(user=0, idle=0)]
    after = [cpu(user=10, idle=90), cpu(user=90, idle=10)]
    samples = cpu_samples(cpu(), cpu(user=100, idle=100), before, after, 1.0)
    usage = {s.labels["cpu"]: s.value for s in samples if s.metric == "cpu.usage_percent"}
    assert usage == {"total": 50.0, "0": 10.0, "1": 90.0}
    assert {s.metric for s in samples} == CPU_METRICS


def test_cpu_samples_first_collection_and_hotplug() -> None:
    assert cpu_samples(None, cpu(user=1), None, [cpu(user=1)], 1.0) == []
    # a core came online: per-core readings no longer line up, skip them this time
    samples = cpu_samples(cpu(), cpu(user=1, idle=1), [cpu()], [cpu(), cpu()], 1.0)
    assert {s.labels["cpu"] for s in samples} == {"total"}


def test_memory_samples() -> None:
    gib = 1024**3
    vm = VirtualMemory(total=8 * gib, available=6 * gib, used=1 * gib, free=5 * gib, percent=25)
    samples = {s.metric: s.value for s in memory_samples(vm, Swap(0, 0, 0, 0.0), 1.0)}
    assert samples["mem.used_percent"] == 25.0
    assert samples["mem.used_bytes"] == 2 * gib
    assert samples["mem.available_bytes"] == 6 * gib
    assert samples["mem.total_bytes"] == 8 * gib
    assert samples["swap.used_percent"] == 0.0  # no swap configured: no division by zero
    assert samples["swap.used_bytes"] == 0.0


def test_disk_usage_samples() -> None:
    samples = disk_usage_samples({"/": Usage(100, 40, 60, 40.0)}, 1.0)
    assert [(s.metric, s.value, s.labels) for s in samples] == [
        ("disk.used_percent", 40.0, {"mount": "/"}),
        ("disk.used_bytes", 40.0, {"mount": "/"}),
        ("disk.free_bytes", 60.0, {"mount": "/"}),
    ]


@pytest.mark.parametrize(
    ("fstype", "mount", "real"),
    [
        ("ext4", "/", True),
        ("xfs", "/var/lib/data", True),
        ("tmpfs", "/run", False),
        ("overlay", "/var/lib/docker/overlay2/abc/merged", False),
        ("squashfs", "/snap/core/1", False),
        ("proc", "/proc", False),
        ("ext4", "/dev/something", False),
        ("", "/mnt", False),
    ],
)
def test_is_real_filesystem(fstype: str, mount: str, real: bool) -> None:
    assert is_real_filesystem(fstype, mount) is real


def test_net_counter_reset_yields_no_negative_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    NetIO = namedtuple("NetIO", "bytes_sent bytes_recv errin errout dropin dropout")
    readings = iter(
        [
            {"eth0": NetIO(1000, 1000, 0, 0, 0, 0)},
            {"eth0": NetIO(3000, 5000, 0, 0, 0, 0)},
            {"eth0": NetIO(10, 10, 0, 0, 0, 0)},  # driver reload: counters restart
            {"eth0": NetIO(1010, 2010, 0, 0, 0, 0)},
        ]
    )
    clock = iter([0.0, 2.0, 4.0, 5.0])
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic: next(readings))
    collector = SystemCollector(monotonic=lambda: next(clock))

    def net(samples: list[Sample]) -> dict[str, float]:
        return {s.metric: s.value for s in samples if s.metric.startswith("net.")}

    assert net(collector.collect()) == {}
    second = net(collector.collect())
    assert second["net.tx_bytes_per_sec"] == 1000.0
    assert second["net.rx_bytes_per_sec"] == 2000.0
    third = net(collector.collect())
    assert "net.tx_bytes_per_sec" not in third  # reset: no rate rather than a negative one
    assert "net.rx_bytes_per_sec" not in third
    assert all(value >= 0 for value in third.values())
    fourth = net(collector.collect())
    assert fourth["net.tx_bytes_per_sec"] == 1000.0
    assert fourth["net.rx_bytes_per_sec"] == 2000.0


def test_a_failing_section_does_not_break_the_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(psutil, "getloadavg", broken)
    samples = SystemCollector().collect()
    names = {s.metric for s in samples}
    assert "system.load1" not in names
    assert "mem.used_percent" in names


def test_bind_mounts_of_one_device_are_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    Part = namedtuple("Part", "device mountpoint fstype opts")
    parts = [
        Part("/dev/vda1", "/var/tmp", "ext4", "rw"),  # systemd PrivateTmp bind mount
        Part("/dev/vda1", "/", "ext4", "rw"),
        Part("/dev/vdb", "/data", "xfs", "rw"),
        Part("tmpfs", "/run", "tmpfs", "rw"),
    ]
    monkeypatch.setattr(psutil, "disk_partitions", lambda all: parts)
    monkeypatch.setattr(psutil, "disk_usage", lambda mount: Usage(100, 25, 75, 25.0))
    samples = SystemCollector().collect()
    mounts = {s.labels["mount"] for s in samples if s.metric == "disk.used_percent"}
    assert mounts == {"/", "/data"}

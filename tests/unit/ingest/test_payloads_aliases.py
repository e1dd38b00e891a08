"""The alias table and its derivation function."""

from __future__ import annotations

import pytest

from nazar_common.schemas.names import LABEL_NAME_RE, METRIC_NAME_RE
from nazar_ingest.payloads.aliases import COUNTER_ALIASES, GAUGE_ALIASES, cpu_id, derive
from nazar_ingest.payloads.names import label_name, metric_name, strip_port


def test_every_alias_names_a_valid_metric_and_labels() -> None:
    for source, aliases in {**GAUGE_ALIASES, **COUNTER_ALIASES}.items():
        assert METRIC_NAME_RE.match(source), source
        for alias in aliases:
            assert METRIC_NAME_RE.match(alias.target)
            for src, dst in alias.rename.items():
                assert LABEL_NAME_RE.match(src) and LABEL_NAME_RE.match(dst)


@pytest.mark.parametrize(("metric", "labels", "value", "expected"), [
    ("node_memory_MemAvailable_bytes", {"job": "node"}, 5.0, [("mem.available_bytes", {}, 5.0)]),
    ("node_load5", {}, 0.5, [("system.load5", {}, 0.5)]),
    ("node_filesystem_avail_bytes", {"mountpoint": "/", "fstype": "ext4", "device": "sda"}, 9.0,
     [("disk.free_bytes", {"mount": "/"}, 9.0)]),
    ("node_filesystem_avail_bytes", {"mountpoint": "/run", "fstype": "tmpfs"}, 9.0, []),
    ("node_filesystem_avail_bytes", {"mountpoint": "/sys/x", "fstype": "ext4"}, 9.0, []),
    ("system.filesystem.usage", {"mountpoint": "/", "state": "free", "type": "ext4"}, 3.0,
     [("disk.free_bytes", {"mount": "/"}, 3.0)]),
    ("system.filesystem.usage", {"mountpoint": "/", "state": "reserved"}, 3.0, []),
    ("system.memory.utilization", {"state": "used"}, 0.5, [("mem.used_percent", {}, 50.0)]),
    ("system.cpu.utilization", {"state": "idle"}, 0.9,
     [("cpu.usage_percent", {"cpu": "total"}, pytest.approx(10.0))]),
    ("cpu.usage_idle", {"cpu": "cpu-total"}, 80.0, [("cpu.usage_percent", {"cpu": "total"}, 20.0)]),
    ("cpu.usage_iowait", {"cpu": "cpu1"}, 2.0, [("cpu.iowait_percent", {"cpu": "1"}, 2.0)]),
    ("swap.used", {}, 4.0, [("swap.used_bytes", {}, 4.0)]),
    ("unknown.metric", {}, 1.0, []),
])
def test_derive(metric: str, labels: dict[str, str], value: float, expected: list[object]) -> None:
    assert derive(metric, labels, value) == expected


def test_counter_aliases_are_not_derived_per_point() -> None:
    assert "node_network_receive_bytes_total" in COUNTER_ALIASES
    assert derive("node_network_receive_bytes_total", {"device": "eth0"}, 1e6) == []


def test_cpu_id() -> None:
    assert [cpu_id(v) for v in ("cpu0", "cpu-total", "3", "total", "cpu")] == [
        "0", "total", "3", "total", "total",
    ]


def test_name_mapping() -> None:
    assert metric_name("system.cpu.utilization") == "system.cpu.utilization"
    assert metric_name("disk-io.read bytes") == "disk_io.read_bytes"
    assert metric_name("1st") == "_1st"
    assert metric_name(".x") == "_.x"
    assert metric_name("") is None
    assert metric_name("x" * 300) is None
    assert label_name("host.name") == "host_name"
    assert label_name("k8s.pod.uid") == "k8s_pod_uid"
    assert label_name("9") == "_9"
    assert label_name("é") == "_"
    assert strip_port("web-1:9100") == "web-1"
    assert strip_port("10.0.0.1:9100") == "10.0.0.1"
    assert strip_port("[::1]:9100") == "::1"
    assert strip_port("http://example.com:8080/probe") == "example.com"
    assert strip_port("plain") == "plain"

"""Foreign metric names mapped onto the Nazar agent's names (data + one pure function).

Hosts monitored by node_exporter (through Prometheus remote write), the
OpenTelemetry Collector's ``hostmetrics`` receiver or Telegraf report the same
things the Nazar agent does under other names. Two kinds of mapping exist:

* :data:`GAUGE_ALIASES`: a point maps to one point of the agent metric (same
  timestamp, labels renamed, value possibly linearly rescaled). With aliases
  enabled, ingest stores the alias series *alongside* the original, so rules
  and dashboards written for the agent work unchanged, and the original stays
  queryable under its own name.
* :data:`COUNTER_ALIASES`: the agent metric is a per-second rate of a
  cumulative counter (``node_network_receive_bytes_total`` ->
  ``net.rx_bytes_per_sec``). A single point cannot be converted; the query
  layer derives these with the ``rate`` aggregation (:mod:`nazar_ingest.rates`),
  and rules reference the source metric with that aggregation. They are data
  here so the query and rule layers share one table.

Label names here are after name mapping (OTel ``host.name`` -> ``host_name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: File-system types that never hold user data; no ``disk.*`` alias for them.
PSEUDO_FILESYSTEMS = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts",
    "devtmpfs", "fuse.lxcfs", "fusectl", "hugetlbfs", "mqueue", "nsfs", "overlay", "proc",
    "pstore", "ramfs", "rpc_pipefs", "securityfs", "squashfs", "sysfs", "tmpfs", "tracefs",
})
#: Mount points under these prefixes get no ``disk.*`` alias (as the agent does).
PSEUDO_MOUNT_PREFIXES = ("/proc", "/sys", "/dev", "/run/user", "/snap/")


@dataclass(frozen=True)
class GaugeAlias:
    """``target = offset + scale * source``, for points whose labels match ``where``."""

    target: str
    #: Source label -> alias label; other source labels are dropped.
    rename: Mapping[str, str] = field(default_factory=dict)
    #: Source labels that must have these values.
    where: Mapping[str, str] = field(default_factory=dict)
    #: Alias labels set when the source lacks them.
    defaults: Mapping[str, str] = field(default_factory=dict)
    scale: float = 1.0
    offset: float = 0.0
    #: Skip file-system pseudo mounts (by the ``fstype``/``type`` label and mount point).
    real_filesystems_only: bool = False


@dataclass(frozen=True)
class CounterAlias:
    """``target = scale * rate(source)`` (computed at query time)."""

    target: str
    rename: Mapping[str, str] = field(default_factory=dict)
    where: Mapping[str, str] = field(default_factory=dict)
    scale: float = 1.0


_MOUNT = {"mountpoint": "mount"}
_TELEGRAF_MOUNT = {"path": "mount"}
_CPU = {"cpu": "cpu"}

GAUGE_ALIASES: dict[str, tuple[GaugeAlias, ...]] = {
    # Prometheus node_exporter
    "node_memory_MemAvailable_bytes": (GaugeAlias("mem.available_bytes"),),
    "node_memory_MemTotal_bytes": (GaugeAlias("mem.total_bytes"),),
    "node_filesystem_avail_bytes": (
        GaugeAlias("disk.free_bytes", _MOUNT, real_filesystems_only=True),
    ),
    "node_load1": (GaugeAlias("system.load1"),),
    "node_load5": (GaugeAlias("system.load5"),),
    "node_load15": (GaugeAlias("system.load15"),),
    # OpenTelemetry Collector hostmetrics receiver
    "system.cpu.load_average.1m": (GaugeAlias("system.load1"),),
    "system.cpu.load_average.5m": (GaugeAlias("system.load5"),),
    "system.cpu.load_average.15m": (GaugeAlias("system.load15"),),
    "system.cpu.utilization": (
        GaugeAlias("cpu.usage_percent", _CPU, {"state": "idle"}, {"cpu": "total"},
                   scale=-100.0, offset=100.0),
    ),
    "system.memory.utilization": (
        GaugeAlias("mem.used_percent", where={"state": "used"}, scale=100.0),
    ),
    "system.filesystem.usage": (
        GaugeAlias("disk.free_bytes", _MOUNT, {"state": "free"}, real_filesystems_only=True),
        GaugeAlias("disk.used_bytes", _MOUNT, {"state": "used"}, real_filesystems_only=True),
    ),
    "system.filesystem.utilization": (
        GaugeAlias("disk.used_percent", _MOUNT, scale=100.0, real_filesystems_only=True),
    ),
    # Telegraf (inputs.cpu, mem, disk, swap; system.load1/5/15 and
    # mem.used_percent / swap.used_percent already have the agent's names)
    "cpu.usage_idle": (
        GaugeAlias("cpu.usage_percent", _CPU, defaults={"cpu": "total"}, scale=-1.0,
                   offset=100.0),
    ),
    "cpu.usage_user": (GaugeAlias("cpu.user_percent", _CPU, defaults={"cpu": "total"}),),
    "cpu.usage_system": (GaugeAlias("cpu.system_percent", _CPU, defaults={"cpu": "total"}),),
    "cpu.usage_iowait": (GaugeAlias("cpu.iowait_percent", _CPU, defaults={"cpu": "total"}),),
    "mem.available": (GaugeAlias("mem.available_bytes"),),
    "mem.total": (GaugeAlias("mem.total_bytes"),),
    "disk.free": (GaugeAlias("disk.free_bytes", _TELEGRAF_MOUNT, real_filesystems_only=True),),
    "disk.used": (GaugeAlias("disk.used_bytes", _TELEGRAF_MOUNT, real_filesystems_only=True),),
    "disk.used_percent": (
        GaugeAlias("disk.used_percent", _TELEGRAF_MOUNT, real_filesystems_only=True),
    ),
    "swap.used": (GaugeAlias("swap.used_bytes"),),
}

_NET = {"device": "interface"}
_DISK = {"device": "device"}

COUNTER_ALIASES: dict[str, tuple[CounterAlias, ...]] = {
    # node_exporter
    "node_network_receive_bytes_total": (CounterAlias("net.rx_bytes_per_sec", _NET),),
    "node_network_transmit_bytes_total": (CounterAlias("net.tx_bytes_per_sec", _NET),),
    "node_network_receive_errs_total": (CounterAlias("net.rx_errors_per_sec", _NET),),
    "node_network_transmit_errs_total": (CounterAlias("net.tx_errors_per_sec", _NET),),
    "node_network_receive_drop_total": (CounterAlias("net.rx_drops_per_sec", _NET),),
    "node_network_transmit_drop_total": (CounterAlias("net.tx_drops_per_sec", _NET),),
    "node_disk_read_bytes_total": (CounterAlias("disk.read_bytes_per_sec", _DISK),),
    "node_disk_written_bytes_total": (CounterAlias("disk.write_bytes_per_sec", _DISK),),
    "node_disk_reads_completed_total": (CounterAlias("disk.read_ops_per_sec", _DISK),),
    "node_disk_writes_completed_total": (CounterAlias("disk.write_ops_per_sec", _DISK),),
    # OpenTelemetry hostmetrics
    "system.network.io": (
        CounterAlias("net.rx_bytes_per_sec", _NET, {"direction": "receive"}),
        CounterAlias("net.tx_bytes_per_sec", _NET, {"direction": "transmit"}),
    ),
    "system.network.errors": (
        CounterAlias("net.rx_errors_per_sec", _NET, {"direction": "receive"}),
        CounterAlias("net.tx_errors_per_sec", _NET, {"direction": "transmit"}),
    ),
    "system.network.dropped": (
        CounterAlias("net.rx_drops_per_sec", _NET, {"direction": "receive"}),
        CounterAlias("net.tx_drops_per_sec", _NET, {"direction": "transmit"}),
    ),
    "system.disk.io": (
        CounterAlias("disk.read_bytes_per_sec", _DISK, {"direction": "read"}),
        CounterAlias("disk.write_bytes_per_sec", _DISK, {"direction": "write"}),
    ),
    "system.disk.operations": (
        CounterAlias("disk.read_ops_per_sec", _DISK, {"direction": "read"}),
        CounterAlias("disk.write_ops_per_sec", _DISK, {"direction": "write"}),
    ),
    # Telegraf inputs.net and inputs.diskio
    "net.bytes_recv": (CounterAlias("net.rx_bytes_per_sec", {"interface": "interface"}),),
    "net.bytes_sent": (CounterAlias("net.tx_bytes_per_sec", {"interface": "interface"}),),
    "net.err_in": (CounterAlias("net.rx_errors_per_sec", {"interface": "interface"}),),
    "net.err_out": (CounterAlias("net.tx_errors_per_sec", {"interface": "interface"}),),
    "net.drop_in": (CounterAlias("net.rx_drops_per_sec", {"interface": "interface"}),),
    "net.drop_out": (CounterAlias("net.tx_drops_per_sec", {"interface": "interface"}),),
    "diskio.read_bytes": (CounterAlias("disk.read_bytes_per_sec", {"name": "device"}),),
    "diskio.write_bytes": (CounterAlias("disk.write_bytes_per_sec", {"name": "device"}),),
    "diskio.reads": (CounterAlias("disk.read_ops_per_sec", {"name": "device"}),),
    "diskio.writes": (CounterAlias("disk.write_ops_per_sec", {"name": "device"}),),
}

#: Agent metrics derived from CPU-time counters by a ratio of rates:
#: ``cpu.usage_percent = 100 * (1 - rate(idle) / sum over modes of rate(mode))``
#: per ``cpu`` label, from node_exporter's ``node_cpu_seconds_total{mode}`` or
#: OTel's ``system.cpu.time{state}``. (Telegraf already sends percentages.)
CPU_TIME_COUNTERS: dict[str, str] = {
    "node_cpu_seconds_total": "mode",
    "system.cpu.time": "state",
}


def cpu_id(value: str) -> str:
    """``cpu0`` -> ``0``, ``cpu-total`` -> ``total`` (the agent's ``cpu`` label values)."""
    if value.startswith("cpu"):
        value = value[3:].lstrip("-")
    return value or "total"


def _is_pseudo_fs(labels: Mapping[str, str]) -> bool:
    fstype = labels.get("fstype") or labels.get("type") or ""
    mount = labels.get("mountpoint") or labels.get("path") or ""
    return fstype in PSEUDO_FILESYSTEMS or mount.startswith(PSEUDO_MOUNT_PREFIXES)


def derive(
    metric: str, labels: Mapping[str, str], value: float
) -> list[tuple[str, dict[str, str], float]]:
    """The alias points of one point: ``[(metric, labels, value), ...]``."""
    aliases = GAUGE_ALIASES.get(metric)
    if not aliases:
        return []
    out = []
    for alias in aliases:
        if any(labels.get(k) != v for k, v in alias.where.items()):
            continue
        if alias.real_filesystems_only and _is_pseudo_fs(labels):
            continue
        new: dict[str, str] = dict(alias.defaults)
        for src, dst in alias.rename.items():
            if src in labels:
                new[dst] = labels[src]
        if "cpu" in new:
            new["cpu"] = cpu_id(new["cpu"])
        out.append((alias.target, new, alias.offset + alias.scale * value))
    return out

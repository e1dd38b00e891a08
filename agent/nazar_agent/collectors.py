"""Collectors: psutil readings in, samples out.

The ``*_samples`` functions are pure: they take psutil's named tuples (or any
object with the same attributes) and return samples, so they can be tested with
synthetic readings. :class:`SystemCollector` is the thin stateful shell that
reads psutil once per collection and keeps the previous counters for rates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psutil

from nazar_agent.rates import RateTracker
from nazar_agent.samples import Sample

logger = logging.getLogger(__name__)

#: File-system types that never hold user data (or are views of another mount).
PSEUDO_FSTYPES = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs",
        "devfs", "devpts", "devtmpfs", "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs",
        "fuse.portal", "fusectl", "hugetlbfs", "iso9660", "mqueue", "nsfs", "overlay",
        "proc", "procfs", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs",
        "squashfs", "sysfs", "tmpfs", "tracefs", "udf",
    }
)  # fmt: skip

#: Block devices whose I/O is not interesting (loop-mounted images, RAM disks).
IGNORED_DISK_PREFIXES = ("loop", "ram", "zram", "fd")

#: Linux accounts guest time inside user/nice, so it must not be counted twice.
_GUEST_FIELDS = ("guest", "guest_nice")

_DISK_IO_FIELDS = (
    ("disk.read_bytes_per_sec", "read_bytes"),
    ("disk.write_bytes_per_sec", "write_bytes"),
    ("disk.read_ops_per_sec", "read_count"),
    ("disk.write_ops_per_sec", "write_count"),
)

_NET_IO_FIELDS = (
    ("net.rx_bytes_per_sec", "bytes_recv"),
    ("net.tx_bytes_per_sec", "bytes_sent"),
    ("net.rx_errors_per_sec", "errin"),
    ("net.tx_errors_per_sec", "errout"),
    ("net.rx_drops_per_sec", "dropin"),
    ("net.tx_drops_per_sec", "dropout"),
)


def cpu_time_shares(previous: Any, current: Any) -> dict[str, float] | None:
    """Percent of the elapsed CPU time spent per mode between two ``cpu_times`` readings.

    Returns ``usage`` (everything but idle and iowait) plus one entry per field of
    the reading, or ``None`` when no time elapsed or a counter went backwards.
    """
    fields: tuple[str, ...] = current._fields
    deltas = {name: getattr(current, name) - getattr(previous, name) for name in fields}
    if any(delta < 0 for delta in deltas.values()):
        return None
    total = sum(deltas.values()) - sum(deltas.get(name, 0.0) for name in _GUEST_FIELDS)
    if total <= 0:
        return None
    idle = deltas.get("idle", 0.0) + deltas.get("iowait", 0.0)
    shares = {name: _clamp_percent(100.0 * delta / total) for name, delta in deltas.items()}
    shares["usage"] = _clamp_percent(100.0 * (total - idle) / total)
    return shares


def cpu_samples(
    previous_total: Any,
    current_total: Any,
    previous_per_cpu: list[Any] | None,
    current_per_cpu: list[Any],
    timestamp: float,
) -> list[Sample]:
    """CPU usage samples from two consecutive ``cpu_times`` readings (total and per core)."""
    samples: list[Sample] = []
    if previous_total is not None:
        shares = cpu_time_shares(previous_total, current_total)
        if shares is not None:
            total = {"cpu": "total"}
            samples.append(Sample("cpu.usage_percent", shares["usage"], timestamp, total))
            for metric, mode in (
                ("cpu.user_percent", "user"),
                ("cpu.system_percent", "system"),
                ("cpu.iowait_percent", "iowait"),
            ):
                if mode in shares:
                    samples.append(Sample(metric, shares[mode], timestamp, dict(total)))
    if previous_per_cpu is not None and len(previous_per_cpu) == len(current_per_cpu):
        pairs = zip(previous_per_cpu, current_per_cpu, strict=True)
        for index, (before, after) in enumerate(pairs):
            shares = cpu_time_shares(before, after)
            if shares is not None:
                labels = {"cpu": str(index)}
                samples.append(Sample("cpu.usage_percent", shares["usage"], timestamp, labels))
    return samples


def load_samples(load: tuple[float, float, float], timestamp: float) -> list[Sample]:
    """``system.load1/5/15`` from ``os.getloadavg()``-style triples."""
    return [
        Sample(f"system.load{minutes}", float(value), timestamp)
        for minutes, value in zip((1, 5, 15), load, strict=True)
    ]


def memory_samples(virtual: Any, swap: Any, timestamp: float) -> list[Sample]:
    """Memory and swap samples from ``virtual_memory()`` and ``swap_memory()``.

    "Used" memory is ``total - available``: memory the kernel cannot hand out
    without swapping, which is what matters for memory pressure.
    """
    total = float(virtual.total)
    available = float(virtual.available)
    used = max(total - available, 0.0)
    used_percent = 100.0 * used / total if total > 0 else 0.0
    swap_total = float(swap.total)
    swap_used = float(swap.used)
    swap_percent = 100.0 * swap_used / swap_total if swap_total > 0 else 0.0
    return [
        Sample("mem.used_percent", _clamp_percent(used_percent), timestamp),
        Sample("mem.used_bytes", used, timestamp),
        Sample("mem.available_bytes", available, timestamp),
        Sample("mem.total_bytes", total, timestamp),
        Sample("swap.used_percent", _clamp_percent(swap_percent), timestamp),
        Sample("swap.used_bytes", swap_used, timestamp),
    ]


def is_real_filesystem(fstype: str, mountpoint: str) -> bool:
    """Whether a mount holds real storage (not proc, tmpfs, overlay, snap images...)."""
    if not fstype or fstype in PSEUDO_FSTYPES:
        return False
    return not mountpoint.startswith(("/proc", "/sys", "/dev", "/run/user", "/snap/"))


def disk_usage_samples(usages: Mapping[str, Any], timestamp: float) -> list[Sample]:
    """Space samples from ``{mountpoint: disk_usage(mountpoint)}``."""
    samples: list[Sample] = []
    for mount, usage in sorted(usages.items()):
        labels = {"mount": mount}
        samples.append(Sample("disk.used_percent", float(usage.percent), timestamp, labels))
        samples.append(Sample("disk.used_bytes", float(usage.used), timestamp, dict(labels)))
        samples.append(Sample("disk.free_bytes", float(usage.free), timestamp, dict(labels)))
    return samples


def counter_rate_samples(
    tracker: RateTracker,
    counters: Mapping[str, Any],
    fields: Iterable[tuple[str, str]],
    label: str,
    now: float,
    timestamp: float,
) -> list[Sample]:
    """Per-second rate samples for every ``(metric, counter attribute)`` of every entity.

    ``counters`` maps an entity (device, interface) to its psutil counter tuple;
    ``now`` is a monotonic time used for the rate's time base.
    """
    samples: list[Sample] = []
    fields = tuple(fields)
    for entity, reading in sorted(counters.items()):
        for metric, attribute in fields:
            rate = tracker.update((metric, entity), float(getattr(reading, attribute)), now)
            if rate is not None:
                samples.append(Sample(metric, round(rate, 3), timestamp, {label: entity}))
    return samples


def _clamp_percent(value: float) -> float:
    return round(min(max(value, 0.0), 100.0), 3)


class SystemCollector:
    """Reads psutil and produces one list of samples per :meth:`collect` call.

    Rates (CPU percentages, disk and network throughput) need two readings, so
    the first collection after construction has none of them.
    """

    def __init__(
        self,
        *,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._rates = RateTracker()
        self._cpu_total: Any = None
        self._cpu_per_core: list[Any] | None = None

    def collect(self) -> list[Sample]:
        timestamp = round(self._wall_clock(), 3)
        now = self._monotonic()
        samples: list[Sample] = []
        for section, reader in (
            ("cpu", self._cpu),
            ("load", self._load),
            ("memory", self._memory),
            ("disk_usage", self._disk_usage),
            ("disk_io", self._disk_io),
            ("network", self._network),
        ):
            try:
                samples.extend(reader(now, timestamp))
            except Exception:
                logger.warning(
                    "collector section failed", extra={"section": section}, exc_info=True
                )
        self._rates.end_cycle()
        return samples

    def _cpu(self, now: float, timestamp: float) -> list[Sample]:
        total = psutil.cpu_times(percpu=False)
        per_core = psutil.cpu_times(percpu=True)
        samples = cpu_samples(self._cpu_total, total, self._cpu_per_core, per_core, timestamp)
        self._cpu_total, self._cpu_per_core = total, per_core
        return samples

    def _load(self, now: float, timestamp: float) -> list[Sample]:
        return load_samples(psutil.getloadavg(), timestamp)

    def _memory(self, now: float, timestamp: float) -> list[Sample]:
        return memory_samples(psutil.virtual_memory(), psutil.swap_memory(), timestamp)

    def _disk_usage(self, now: float, timestamp: float) -> list[Sample]:
        usages: dict[str, Any] = {}
        devices: set[str] = set()
        # Shortest mount point first, so a file system bind-mounted elsewhere (systemd's
        # PrivateTmp, container volumes...) is reported once, at its top-most mount.
        partitions = sorted(psutil.disk_partitions(all=False), key=lambda p: len(p.mountpoint))
        for part in partitions:
            if part.mountpoint in usages or not is_real_filesystem(part.fstype, part.mountpoint):
                continue
            if part.device and part.device != "none":
                if part.device in devices:
                    continue
                devices.add(part.device)
            try:
                usages[part.mountpoint] = psutil.disk_usage(part.mountpoint)
            except OSError as exc:  # unreadable or vanished mount point
                logger.debug(
                    "disk_usage failed", extra={"mount": part.mountpoint, "error": str(exc)}
                )
        return disk_usage_samples(usages, timestamp)

    def _disk_io(self, now: float, timestamp: float) -> list[Sample]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        devices = {
            name: reading
            for name, reading in counters.items()
            if not name.startswith(IGNORED_DISK_PREFIXES)
        }
        return counter_rate_samples(self._rates, devices, _DISK_IO_FIELDS, "device", now, timestamp)

    def _network(self, now: float, timestamp: float) -> list[Sample]:
        counters = psutil.net_io_counters(pernic=True) or {}
        return counter_rate_samples(
            self._rates, counters, _NET_IO_FIELDS, "interface", now, timestamp
        )

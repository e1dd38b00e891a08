"""The worker runtime shared by every process that talks to the broker.

* :mod:`~nazar_common.runtime.worker` — :class:`Runtime` (database, broker,
  consumers, tasks, listener, readiness, ordered shutdown) and
  :func:`run_worker` (a worker process's lifecycle);
* :mod:`~nazar_common.runtime.backoff` — backoff with jitter, ``retry``, and
  incidents logged once;
* :mod:`~nazar_common.runtime.tasks` — supervised and periodic background tasks;
* :mod:`~nazar_common.runtime.listener` — ``LISTEN`` with reconnection;
* :mod:`~nazar_common.runtime.metrics` — ``nazar_<component>_*`` runtime metrics;
* :mod:`~nazar_common.runtime.http` — the worker's HTTP endpoint.

The broker connection itself, with consumer supervision, is
:class:`nazar_common.messaging.broker.Broker`.
"""

"""Nazar notifier: turns alert events into grouped, deduplicated, silenced-aware
notifications on Slack, e-mail and webhooks, with retries, circuit breakers
and a dead-letter path."""

"""Names of the custom resources and of the operator's own markers."""

from __future__ import annotations

GROUP = "nazar.dev"
VERSION = "v1alpha1"
ALERT_RULES = "alertrules"
MONITORED_HOSTS = "monitoredhosts"

#: Finalizer that keeps a resource until its rules are deleted from the API.
FINALIZER = "nazar.dev/finalizer"
#: Prefix of the annotations kopf keeps its progress and last-handled state in.
ANNOTATIONS_PREFIX = "nazar.dev"

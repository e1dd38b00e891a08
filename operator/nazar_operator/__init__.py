"""nazar-operator: Kubernetes custom resources for Nazar and the analyzer scaler.

Layout: ``handlers`` registers kopf handlers that delegate to the pure
``reconcile`` and ``scaling`` functions; ``nazar_api``, ``queue`` and ``kube``
are the adapters that do I/O.
"""

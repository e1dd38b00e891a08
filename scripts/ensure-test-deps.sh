#!/usr/bin/env bash
# Tools the test suite drives as real peers: Prometheus and node_exporter
# (remote_write tests) from Debian's packages, Node.js for the
# TimescaleDB-enabled PGlite server that checks the TimescaleDB SQL, and
# Chromium (headless) for the dashboard's browser test.
set -euo pipefail
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-node-exporter >/dev/null 2>&1 || missing+=(prometheus-node-exporter)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing test tools: ${missing[*]} ..."
        apt-get update -qq
        # The packages' services are not wanted: tests start their own instances.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
        for svc in prometheus prometheus-node-exporter; do
            (service "$svc" stop >/dev/null 2>&1 || true)
        done
    else
        echo "note: ${missing[*]} not installed; the tests that need them will be skipped" >&2
        echo "      (Debian: sudo apt-get install ${missing[*]})" >&2
    fi
fi

"""`helm test`: ingest is ready and one sample goes in and comes back out.

Standard library only (runs in the nazar-ingest image). Reads NAZAR_URL and
NAZAR_API_KEY (a key with the ingest and read scopes); exits non-zero with
the reason on failure.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

URL = os.environ["NAZAR_URL"].rstrip("/")
KEY = os.environ["NAZAR_API_KEY"]
TIMEOUT = float(os.environ.get("NAZAR_TEST_TIMEOUT", "60"))
METRIC = "nazar.helm_test"
HOST = "nazar-helm-test"


def call(method, path, body=None, auth=True):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if auth:
        headers["Authorization"] = "Bearer " + KEY
    request = urllib.request.Request(URL + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")[:500]


def main():
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            status, body = call("GET", "/readyz", auth=False)
        except OSError as error:
            status, body = None, str(error)
        if status == 200:
            break
        if time.monotonic() > deadline:
            sys.exit(f"FAIL /readyz: {status} {body}")
        time.sleep(2)
    print(f"ok   /readyz: {body}")

    run = uuid.uuid4().hex[:12]
    value = float(int(time.time()) % 100000)
    status, body = call("POST", "/api/v1/metrics", {
        "host": HOST,
        "samples": [{"metric": METRIC, "value": value, "labels": {"run": run}}],
    })
    if status != 202:
        sys.exit(f"FAIL POST /api/v1/metrics: {status} {body}")
    print(f"ok   POST /api/v1/metrics: {METRIC}{{run={run}}} = {value}")

    query = urllib.parse.urlencode(
        {"metric": METRIC, "host": HOST, "labels": f"run={run}", "start": "now-15m"})
    while True:
        status, body = call("GET", "/api/v1/query?" + query)
        if status != 200:
            sys.exit(f"FAIL GET /api/v1/query: {status} {body}")
        points = [p for s in body["series"] for p in s["points"]]
        if any(p[1] == value for p in points):
            break
        if time.monotonic() > deadline:
            sys.exit(f"FAIL the sample did not come back within {TIMEOUT:.0f} s: {body}")
        time.sleep(1)
    print(f"ok   GET /api/v1/query: the sample came back ({len(points)} point)")


if __name__ == "__main__":
    main()

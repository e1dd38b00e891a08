"""Chart hooks that talk to the Kubernetes API (standard library only; runs in
the nazar-ingest image with the hook's service account).

  bootstrap.py secrets NAME:KEY [NAME:KEY ...]
      Creates each Secret with a new Nazar API key under KEY unless it exists,
      so a key is generated once, in the cluster, and never by a render.
  bootstrap.py crds FILE [FILE ...]
      Creates each CustomResourceDefinition (JSON) or makes its spec exactly
      the file's (Helm installs crds/ on the first install only).

In a pod, the API server and credentials come from the service account;
KUBERNETES_API_URL (plain HTTP, no token) points it elsewhere.
"""

import base64
import json
import os
import secrets
import ssl
import sys
import urllib.error
import urllib.request

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
MANAGER = "nazar-chart"


class Api:
    def __init__(self):
        url = os.environ.get("KUBERNETES_API_URL")
        self.context = None
        self.token = None
        if url:
            self.url = url.rstrip("/")
        else:
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            if ":" in host:
                host = f"[{host}]"
            self.url = f"https://{host}:{os.environ['KUBERNETES_SERVICE_PORT']}"
            self.context = ssl.create_default_context(cafile=f"{SA}/ca.crt")
            with open(f"{SA}/token") as f:
                self.token = f.read().strip()

    def call(self, method, path, body=None, content_type="application/json"):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text
        except OSError as error:
            sys.exit(f"{method} {self.url}{path}: {getattr(error, 'reason', error)}")


def fail(what, status, body):
    message = body.get("message") if isinstance(body, dict) else body
    sys.exit(f"{what}: HTTP {status}: {message}")


def new_key():
    """A key in Nazar's format, nzr_<id>_<secret> (as nazar_common.auth makes them)."""
    return f"nzr_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def ensure_secrets(api, pairs):
    namespace = os.environ["NAMESPACE"]
    labels = json.loads(os.environ.get("LABELS", "{}"))
    base = f"/api/v1/namespaces/{namespace}/secrets"
    for pair in pairs:
        name, key = pair.split(":", 1)
        status, body = api.call("GET", f"{base}/{name}")
        if status == 200:
            if key in (body.get("data") or {}):
                print(f"secret {name}: exists, kept")
                continue
            patch = {"data": {key: base64.b64encode(new_key().encode()).decode()}}
            status, body = api.call("PATCH", f"{base}/{name}", patch,
                                    "application/merge-patch+json")
            if status != 200:
                fail(f"secret {name}", status, body)
            print(f"secret {name}: key {key} added")
            continue
        if status != 404:
            fail(f"secret {name}", status, body)
        secret = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {key: base64.b64encode(new_key().encode()).decode()},
        }
        status, body = api.call("POST", base, secret)
        if status == 409:
            print(f"secret {name}: created meanwhile, kept")
        elif status in (200, 201):
            print(f"secret {name}: created")
        else:
            fail(f"secret {name}", status, body)


def replacing(old, new):
    """A JSON merge patch (RFC 7386) that turns ``old`` into exactly ``new``:
    keys ``new`` lacks are removed, not left behind as a plain merge would."""
    patch = {key: None for key in old if key not in new}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            patch[key] = replacing(old[key], value)
        else:
            patch[key] = value
    return patch


def ensure_crds(api, files):
    base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for path in files:
        with open(path) as f:
            crd = json.load(f)
        name = crd["metadata"]["name"]
        status, body = api.call("GET", f"{base}/{name}")
        if status == 404:
            status, body = api.call("POST", f"{base}?fieldManager={MANAGER}", crd)
            if status not in (200, 201):
                fail(f"crd {name}", status, body)
            print(f"crd {name}: created")
            continue
        if status != 200:
            fail(f"crd {name}", status, body)
        patch = {
            "metadata": {field: crd["metadata"][field]
                         for field in ("labels", "annotations") if field in crd["metadata"]},
            "spec": replacing(body.get("spec") or {}, crd["spec"]),
        }
        status, body = api.call("PATCH", f"{base}/{name}?fieldManager={MANAGER}", patch,
                                "application/merge-patch+json")
        if status != 200:
            fail(f"crd {name}", status, body)
        print(f"crd {name}: updated")


def main(argv):
    if len(argv) < 2 or argv[0] not in ("secrets", "crds"):
        sys.exit(__doc__)
    api = Api()
    if argv[0] == "secrets":
        ensure_secrets(api, argv[1:])
    else:
        ensure_crds(api, argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])

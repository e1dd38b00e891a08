"""The dashboard's npm project pins exact versions and its lock file records
no registry URLs (the project's .npmrc sees to both)."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"


def test_npmrc_keeps_registry_urls_out_of_the_lock_and_versions_exact() -> None:
    settings = dict(
        line.split("=", 1) for line in (DASHBOARD / ".npmrc").read_text().splitlines()
        if "=" in line
    )
    assert settings["omit-lockfile-registry-resolved"] == "true"
    assert settings["save-exact"] == "true"


def test_dependencies_are_pinned_to_exact_versions() -> None:
    package = json.loads((DASHBOARD / "package.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in package[section].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: {version} is not exact"


def test_lock_file_records_no_registry_urls() -> None:
    text = (DASHBOARD / "package-lock.json").read_text()
    lock = json.loads(text)
    assert lock["lockfileVersion"] >= 3
    assert '"resolved"' not in text
    # Funding links may stay; no package address (a registry or a tarball).
    urls = re.findall(r"[a-z+]+://[^\s\"]+", text)
    assert not [u for u in urls if "registry" in u or u.endswith(".tgz")], urls
    package = json.loads((DASHBOARD / "package.json").read_text())
    root = lock["packages"][""]
    assert root["dependencies"] == package["dependencies"]
    assert root["devDependencies"] == package["devDependencies"]
    for name in package["dependencies"]:
        assert lock["packages"][f"node_modules/{name}"]["version"] == package["dependencies"][name]

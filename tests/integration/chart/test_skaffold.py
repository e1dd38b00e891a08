"""skaffold.yaml: its structure, Dockerfiles and the chart values it sets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
IMAGES = {"nazar-ingest", "nazar-analyzer", "nazar-notifier", "nazar-operator", "nazar-agent"}


def config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())  # type: ignore[no-any-return]


def chart_values() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "charts/nazar/values.yaml").read_text())  # type: ignore[no-any-return]


def lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted} is not a chart value"
        node = node[part]
    return node


def test_header() -> None:
    cfg = config()
    assert re.fullmatch(r"skaffold/v4beta\d+", cfg["apiVersion"])
    assert cfg["kind"] == "Config"
    assert cfg["metadata"]["name"] == "nazar"


def test_artifacts_build_from_existing_dockerfiles() -> None:
    artifacts = config()["build"]["artifacts"]
    assert {a["image"] for a in artifacts} == IMAGES
    for artifact in artifacts:
        assert artifact["context"] == "."
        dockerfile = ROOT / artifact["docker"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile
        text = dockerfile.read_text()
        entrypoint = re.search(r'ENTRYPOINT \["([^"]+)"\]', text)
        assert entrypoint and entrypoint.group(1) == artifact["image"]
        assert "USER 10001" in text


def test_helm_release_sets_every_image() -> None:
    (release,) = config()["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    templates = release["setValueTemplates"]
    values = chart_values()
    for image in IMAGES:
        component = image.removeprefix("nazar-")
        key = image.replace("-", "_")
        assert templates[f"{component}.image.repository"] == f"{{{{.IMAGE_REPO_{key}}}}}"
        assert templates[f"{component}.image.tag"] == f"{{{{.IMAGE_TAG_{key}}}}}"
        # The chart's own default names the same image.
        assert lookup(values, f"{component}.image.repository") == image
    for dotted in [*templates, *release.get("setValues", {})]:
        lookup(values, dotted)


def test_profiles_patch_existing_paths() -> None:
    cfg = config()
    for profile in cfg.get("profiles", []):
        for patch in profile["patches"]:
            path = patch["path"].strip("/").split("/")
            node: Any = cfg
            for part in path[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            assert isinstance(node, dict), patch["path"]
            lookup(chart_values(), path[-1])

"""The README's configuration reference matches the settings classes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings_doc():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("settings_doc", ROOT / "scripts/settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_configuration_reference_is_current() -> None:
    doc = _settings_doc()
    readme = (ROOT / "README.md").read_text()
    assert doc.render_into(readme) == readme, (
        "README configuration reference is stale: run "
        "`.venv/bin/python scripts/settings_doc.py --write README.md`"
    )


def test_every_deployable_settings_class_is_documented() -> None:
    doc = _settings_doc()
    names = {row[0] for row in doc.rows()}
    for _, module, cls in doc.DEPLOYABLES:
        settings = doc.load(module, cls)
        assert settings is not None, f"{module}.{cls} does not import"
        prefix = settings.model_config.get("env_prefix", "")
        for field in settings.model_fields:
            assert f"`{(prefix + field).upper()}`" in names

"""Each image installs one extra of pyproject.toml (see the Dockerfiles): that
extra, alone in a fresh virtual environment, must be enough to import every
module of its component and run its entry point, and must not bring in what
other components need (the agent DaemonSet without scikit-learn, kopf or
FastAPI).

The project is built into a wheel once and every dependency is resolved once
against the pinned constraints (wheels from pip's cache); each environment
then installs offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

#: extra -> (packages whose every module must import, console script, packages it must not have)
COMPONENTS = {
    "agent": (["nazar_agent"], "nazar-agent",
              ["sklearn", "numpy", "kopf", "fastapi", "asyncpg", "aio_pika", "uvicorn"]),
    "ingest": (["nazar_ingest", "nazar_cli"], "nazar-ingest", ["sklearn", "numpy", "kopf"]),
    "analyzer": (["nazar_analyzer"], "nazar-analyzer", ["kopf", "psutil", "fastapi_offline"]),
    "notifier": (["nazar_notifier"], "nazar-notifier", ["sklearn", "numpy", "kopf", "psutil"]),
    "operator": (["nazar_operator"], "nazar-operator",
                 ["sklearn", "numpy", "fastapi", "asyncpg", "uvicorn", "psutil"]),
}
#: Imported by no production code: in no image.
NOWHERE = ["kubernetes"]

CHECK = """
import importlib, pkgutil, sys
from importlib.metadata import entry_points
packages, script, absent = sys.argv[1].split(","), sys.argv[2], sys.argv[3].split(",")
for name in packages:
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(module.name)
(entry,) = [e for e in entry_points(group="console_scripts") if e.name == script]
assert callable(entry.load()), entry
present = [name for name in absent if importlib.util.find_spec(name) is not None]
assert not present, f"installed but not needed: {present}"
print("ok")
"""


FOLDERS = {"agent": "agent", "operator": "operator", "ingest": "services/ingest",
           "analyzer": "services/analyzer", "notifier": "services/notifier"}


def test_every_component_has_an_extra_and_a_dockerfile() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    scripts = PYPROJECT["project"]["scripts"]
    for extra, (_, script, _) in COMPONENTS.items():
        assert extra in extras and script in scripts
        lines = (ROOT / FOLDERS[extra] / "Dockerfile").read_text().splitlines()
        stages = [n for n, line in enumerate(lines) if line.startswith("FROM ")]
        assert len(stages) >= 2, f"{extra}: not a multi-stage build"
        # Its own extra, installed before any source is copied.
        (deps,) = [n for n, line in enumerate(lines) if f"'.[{extra}]'" in line]
        sources = [n for n, line in enumerate(lines) if line.startswith("COPY ") and (
            line.split()[1] in ("libs", "libs/common", FOLDERS[extra]))]
        assert sources and deps < min(sources), f"{extra}: source copied before dependencies"
        for line in lines:
            if line.startswith("COPY ") and "--from=" not in line:
                for path in line.split()[1:-1]:
                    assert (ROOT / path).exists() or path.startswith("dashboard/"), line
        assert lines[-1] == f'ENTRYPOINT ["{script}"]'
    ingest = (ROOT / "services" / "ingest" / "Dockerfile").read_text()
    assert "FROM node:" in ingest and "npm run build" in ingest
    assert "COPY --from=dashboard /dashboard/dist" in ingest
    assert "nazar[ingest,analyzer,notifier,operator,agent]" in extras["all"]
    runtime = " ".join(PYPROJECT["project"]["dependencies"]
                       + [d for e, ds in extras.items() if e != "dev" for d in ds])
    for name in NOWHERE:
        assert name not in runtime.replace("nazar", "")


SOURCES = ("pyproject.toml", "README.md", "LICENSE", *PYPROJECT["tool"]["setuptools"]["packages"][
    "find"]["where"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of what the Dockerfiles copy, so the checkout stays clean.
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / name, src / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("nazar-*.whl")
    return path


@pytest.fixture(scope="module")
def wheelhouse(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every wheel of every extra, resolved once against the constraints (pip's
    cache provides them); the environments then install offline from here."""
    house = tmp_path_factory.mktemp("wheelhouse")
    shutil.copy(wheel, house)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
         "-c", str(ROOT / "constraints.txt"), "-w", str(house), f"nazar[all] @ {wheel.as_uri()}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return house


def install_and_check(extra: str, house: Path, base: Path) -> str:
    packages, script, absent = COMPONENTS[extra]
    venv = base / extra
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    # The test environment's pip drives the new environment (no pip inside it, as in
    # a slim image), offline from the wheelhouse.
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--disable-pip-version-check", "--no-index", "--find-links", str(house),
         "-c", str(ROOT / "constraints.txt"), f"nazar[{extra}]"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "PIP_NO_INPUT": "1"},
    )
    assert install.returncode == 0, install.stderr[-3000:]
    check = subprocess.run(
        [str(python), "-I", "-c", CHECK, ",".join(packages), script,
         ",".join(absent + NOWHERE)],
        capture_output=True, text=True, timeout=300, cwd=base,
    )
    return check.stdout + check.stderr


@pytest.mark.slow
def test_each_extra_alone_runs_its_component(
    wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("venvs")
    # Two at a time: pip mostly waits on the disk and the cache.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(COMPONENTS, pool.map(
            lambda extra: install_and_check(extra, wheelhouse, base), COMPONENTS), strict=True))
    failed = {extra: out for extra, out in results.items() if out.strip() != "ok"}
    assert not failed, failed

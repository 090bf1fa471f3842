"""Everything the web, worker and beat processes import must be installed by requirements.in.

Tests run on the dev install, which also carries requirements-dev.in and what those packages
pull in. A module the product imports but only a dev package provides passes every other test
here and fails in production, where the image installs requirements.in alone: kombu's Redis
transport imports ``packaging``, which pytest brought in, and the worker crashed at start.

This test works out what requirements.in installs (each requirement with its extras, followed
through every package's own requirements), then imports what the three processes import in a
fresh interpreter that can see only those distributions: importing any other installed package
fails there as it would in production. Optional imports (``try: import pygments``) take their
fallback, as they do in the image; an import the product cannot do without fails the probe.
Then every module the probe loaded must come from the standard library, the project, or one of
those distributions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BASE_DIR = Path(__file__).resolve().parent.parent
RUNTIME_REQUIREMENTS = BASE_DIR / "requirements.in"

# Run as ``python -c PROBE BLOCKED`` in the project root, where BLOCKED is a JSON list of the
# top-level module names of installed distributions that requirements.in does not bring in.
# Prints a JSON object {module: file or null} of the modules it imported beyond those the
# interpreter had loaded at start (site and .pth files).
PROBE = r"""
import sys

already_loaded = set(sys.modules)

import json

BLOCKED = frozenset(json.loads(sys.argv[1]))


class NotInTheRuntimeInstall:
    # First on the meta path: these packages are on disk here but absent from the image.
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the runtime install)", name=name)
        return None


sys.meta_path.insert(0, NotInTheRuntimeInstall)

import importlib
import runpy

# The web process: gunicorn with its settings file and worker class, then the WSGI application,
# which sets Django up (every installed app and its models) and loads the middleware.
import gunicorn.app.wsgiapp
import gunicorn.arbiter
import gunicorn.util

gunicorn_settings = runpy.run_path("config/gunicorn.py")
gunicorn.util.load_class(gunicorn_settings["worker_class"])
# A finished worker's metrics are cleared through this when Prometheus runs multiprocess.
import prometheus_client
import prometheus_client.multiprocess

from config.wsgi import application  # noqa: F401

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.core.files.storage import storages
from django.core.management import get_commands, load_command_class
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.template import engines
from django.urls import get_resolver
from django.utils.module_loading import import_string
from rest_framework.settings import IMPORT_STRINGS, api_settings

for app_config in apps.get_app_configs():
    importlib.import_module(app_config.name)
# What a request reaches: every view, the database backend, caches, storages, templates and
# their tag libraries, the REST framework's configured classes.
get_resolver().url_patterns
for alias in connections:
    connections[alias]
for alias in settings.CACHES:
    caches[alias]
for alias in settings.STORAGES:
    storages[alias]
engines.all()
for name in IMPORT_STRINGS:
    getattr(api_settings, name)
# Messages go through these only when one is sent.
import_string(settings.EMAIL_BACKEND)
import_string(settings.SMS_BACKEND)
# The web service migrates at start, and seed_demo and the other commands run in the image.
MigrationLoader(None, ignore_no_migrations=True)
for command, app_name in get_commands().items():
    load_command_class(app_name, command)

# The worker and beat: the Celery app with its tasks, the Redis transport the broker URL names,
# the prefork pool, and the command line's worker and beat programs.
import celery.apps.beat
import celery.apps.worker
import celery.beat
import celery.bin.celery
import celery.concurrency.prefork
import celery.worker.consumer
import kombu.transport.redis

from config.celery import app

app.loader.import_default_modules()
app.finalize()
app.connection_for_write().transport
celery.concurrency.get_implementation(app.conf.worker_pool)

loaded = {
    name: getattr(module, "__file__", None)
    for name, module in list(sys.modules.items())
    if name not in already_loaded and module is not None
}
print(json.dumps(loaded))
"""


def probe_environment(data_dir: Path) -> dict[str, str]:
    """Production-shaped settings: PostgreSQL and Redis (never connected to), DEBUG off."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "PYTEST_"))}
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL="postgres://probe@127.0.0.1:9/probe",
        REDIS_URL="redis://127.0.0.1:9/0",
        DEBUG="false",
        SECRET_KEY="runtime-requirements-probe",
        DATA_DIR=str(data_dir),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return environment


def imported_modules(data_dir: Path, blocked: set[str]) -> dict[str, str | None]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(sorted(blocked))],
        cwd=BASE_DIR,
        env=probe_environment(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Through a name, so that a failure shows the probe's traceback and not the whole command.
    exit_code = result.returncode
    assert exit_code == 0, (
        "importing what the processes import failed with only the runtime requirements installed:\n"
        + result.stderr[-6000:]
    )
    modules: dict[str, str | None] = json.loads(result.stdout.strip().splitlines()[-1])
    return modules


def requirement_lines(path: Path) -> Iterable[str]:
    """Requirement specifiers of a pip requirements file, following ``-r`` includes."""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            yield from requirement_lines(path.parent / line.split(maxsplit=1)[1])
        else:
            # Any other option (an index, an editable install) would change what gets installed
            # in ways this test does not model; it should be taught about it first.
            assert not line.startswith("-"), f"{path.name}: option not understood: {line}"
            yield line


def applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    """Whether a requirement holds on this interpreter and platform for the chosen extras."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras))


def required_distributions(path: Path) -> set[str]:
    """Canonical names of every distribution a pip install of ``path`` brings in: its direct
    requirements with their extras, and what each of those requires in turn."""
    extras_of: dict[str, set[str]] = {}
    pending = [Requirement(line) for line in requirement_lines(path)]
    pending = [requirement for requirement in pending if applies(requirement, ())]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in extras_of and requirement.extras <= extras_of[name]:
            continue
        # Seen again with a new extra: its requirements are walked again with all its extras.
        extras = extras_of.setdefault(name, set())
        extras |= requirement.extras
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise AssertionError(f"{requirement} is required at runtime but not installed here") from None
        pending += [child for child in map(Requirement, distribution.requires or []) if applies(child, extras)]
    return set(extras_of)


def within(path: Path, folders: Iterable[str]) -> bool:
    return any(path.is_relative_to(Path(folder).resolve()) for folder in folders)


def is_stdlib(top_level: str, file: str) -> bool:
    """Part of Python itself: named as such, or a file in its library outside site-packages
    (``_sysconfigdata_*`` is named after the platform, so only its place tells)."""
    if top_level in sys.stdlib_module_names or top_level in sys.builtin_module_names:
        return True
    path = Path(file).resolve()
    paths = sysconfig.get_paths()
    return within(path, {paths["stdlib"], paths["platstdlib"]}) and not within(
        path, {paths["purelib"], paths["platlib"]}
    )


def project_packages() -> set[str]:
    return {path.parent.name for path in BASE_DIR.glob("*/__init__.py")}


def owner_of(file: str) -> str:
    """The top-level package a module's file lies in, under the interpreter's site-packages."""
    for folder in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        if within(Path(file), [folder]):
            return Path(file).resolve().relative_to(Path(folder).resolve()).parts[0]
    return ""


def test_runtime_requirements_carry_every_module_the_processes_import(tmp_path):
    required = required_distributions(RUNTIME_REQUIREMENTS)
    providers = metadata.packages_distributions()
    ours = project_packages()
    blocked = {
        top_level
        for top_level, names in providers.items()
        if top_level not in ours and not {canonicalize_name(name) for name in names} & required
    }

    by_top_level: dict[str, list[str]] = {}
    files: dict[str, str] = {}
    for module, file in imported_modules(tmp_path, blocked).items():
        top_level = module.partition(".")[0]
        # Modules without a file are made up at run time (Cython's shared runtime module, the
        # __mp_main__ alias) or are namespace shells whose submodules are checked themselves.
        if file is None or top_level in ours or is_stdlib(top_level, file):
            continue
        by_top_level.setdefault(top_level, []).append(module)
        files[module] = file

    missing = []
    for top_level, modules in sorted(by_top_level.items()):
        distributions = {canonicalize_name(name) for name in providers.get(top_level, [])}
        if not distributions:
            # A name a compiled module registers for itself (pandas' Cython runtime, say, as
            # ``_cyutility``): its owner is the package its file lies in.
            distributions = {canonicalize_name(name) for name in providers.get(owner_of(files[modules[0]]), [])}
        if not distributions & required:
            source = ", ".join(sorted(distributions)) or "no installed distribution"
            missing.append(f"{top_level} (from {source}; e.g. {min(modules, key=len)})")
    assert not missing, (
        "imported at runtime but not brought in by requirements.in, so the production image lacks it: "
        + "; ".join(missing)
    )
    # A probe that imported nothing would pass vacuously.
    assert {"django", "celery", "kombu", "gunicorn", "redis", "psycopg"} <= by_top_level.keys()

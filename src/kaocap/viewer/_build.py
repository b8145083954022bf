"""Build hook: ``pip install .`` (and ``-e``, and ``python -m build``) builds the viewer's page.

setuptools runs :class:`BuildPy` (``[tool.setuptools.cmdclass]`` in pyproject.toml) instead of
its own ``build_py``. Before the usual work it runs, in ``web/``, ``npm ci`` (only when
``node_modules`` is missing or older than ``package-lock.json``) and ``npm run build``, which
writes the page into ``src/kaocap/viewer/static/``; package data then carries it into the wheel.

Without Node.js / npm, without ``web/`` (an sdist) or when npm fails, the build goes on with a
warning and the package has no page: ``kaocap serve`` then says how to fix it. Setting
``KAOCAP_SKIP_WEB_BUILD=1`` skips the step. This module imports nothing from kaocap: it runs in
the isolated build environment, where only setuptools is installed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from setuptools.command.build_py import build_py

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
WEB = ROOT / "web"
STATIC = Path(__file__).resolve().parent / "static"
#: npm's own record of what it installed; older than the lockfile means reinstall.
INSTALLED = WEB / "node_modules" / ".package-lock.json"
NPM_TIMEOUT_S = 600


def build_web() -> bool:
    """Build ``web/`` into ``static/``; True when the page was built, False when skipped."""
    if os.environ.get("KAOCAP_SKIP_WEB_BUILD"):
        log.warning("kaocap viewer: KAOCAP_SKIP_WEB_BUILD is set; the page is not built")
        return False
    npm = shutil.which("npm")
    lockfile = WEB / "package-lock.json"
    if npm is None or not lockfile.is_file():
        why = "npm is not on PATH" if npm is None else f"{lockfile} is missing"
        log.warning("kaocap viewer: %s; the page is not built ('kaocap serve' will say so)", why)
        return False
    if not INSTALLED.is_file() or INSTALLED.stat().st_mtime < lockfile.stat().st_mtime:
        _npm(npm, "ci", "--no-audit", "--no-fund")
    _npm(npm, "run", "build")
    return (STATIC / "index.html").is_file()


def _npm(npm: str, *args: str) -> None:
    subprocess.run([npm, *args], cwd=WEB, check=True, timeout=NPM_TIMEOUT_S)


class BuildPy(build_py):
    """setuptools' ``build_py`` that builds the viewer's page first (module docstring)."""

    def run(self) -> None:
        try:
            build_web()
        except (OSError, subprocess.SubprocessError) as err:
            log.warning("kaocap viewer: building web/ failed (%s); the page is not built", err)
        super().run()

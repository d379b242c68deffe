"""A wheel install (not editable) composes every config group from any working folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from compress.config.store import CONF_DIR

# Builds a wheel and a virtual environment (a minute): the slow tier.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra")


@pytest.fixture(scope="module")
def installed_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding only the wheel; the project's own site-packages
    (torch, hydra, ...) are visible through a ``.pth`` path line, which does not run that
    folder's own ``.pth`` hooks, so the editable install stays out of sight."""
    root = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(root / "dist")], check=True, cwd=REPO)  # fmt: skip
    (wheel,) = (root / "dist").glob("compress-*.whl")
    env_dir = root / "env"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "project_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True)  # fmt: skip
    return python


def _run(python: Path, cwd: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, *arguments], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def test_the_wheel_is_what_runs(installed_python: Path, tmp_path: Path):
    result = _run(installed_python, tmp_path, "-c", "import compress; print(compress.__file__)")
    assert "site-packages" in result.stdout and str(REPO) not in result.stdout, result.stderr


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_composes_from_another_folder(installed_python, tmp_path, group):
    options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    script = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from compress.config.store import CONF_DIR, register_configs\n"
        "assert 'site-packages' in str(CONF_DIR), CONF_DIR\n"
        "register_configs()\n"
        "with initialize_config_dir(str(CONF_DIR), version_base='1.3'):\n"
        "    for option in sys.argv[2:]:\n"
        "        key = sys.argv[1]\n"
        "        override = f'+{key}={option}' if key == 'experiment' else f'{key}={option}'\n"
        "        cfg = compose('config', overrides=[override])\n"
        "        print(option)\n"
    )
    result = _run(installed_python, tmp_path, "-c", script, group, *options)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == len(options)


def test_the_command_line_composes_from_another_folder(installed_python, tmp_path):
    result = _run(installed_python, tmp_path, "-m", "compress.main", "--cfg", "job",
                  "prune=0.3", "quant=fp32")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "prune: 0.3" in result.stdout and "name: fp32" in result.stdout

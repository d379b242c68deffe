"""Quieting the libraries does not import datasets (a cold load's measured imports would
include it), yet datasets is quiet once something does import it."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import logging, sys
from compress.infra.quiet import quiet_libraries
quiet_libraries()
assert "datasets" not in sys.modules
import datasets
assert not datasets.is_progress_bar_enabled()
assert datasets.logging.get_verbosity() == logging.ERROR
"""


def test_datasets_is_quiet_without_being_imported_for_it():
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_DATASETS_DISABLE_PROGRESS_BARS", "DATASETS_VERBOSITY")}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr

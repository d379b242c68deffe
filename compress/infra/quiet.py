"""Keep library chatter (per-load progress bars, load reports) out of job logs."""

import os
import sys
import warnings


def quiet_libraries() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        datasets = sys.modules["datasets"]
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    else:
        # read when datasets is imported: a process that never needs it (a cold load, whose
        # import time is measured) does not pay ~0.75 s to import it just to silence it
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("DATASETS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")

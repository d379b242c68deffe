"""Keep library chatter (per-load progress bars, load reports) out of job logs."""

import warnings


def quiet_libraries() -> None:
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")

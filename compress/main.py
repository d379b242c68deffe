"""``python -m compress.main [-m] key=value ...``: one job, or a sweep with ``-m``.

A config the tool refuses stops before torch is imported: one line per problem on stderr,
``error: <what>, accepted: <what>``, exit status 2 (``HYDRA_FULL_ERROR=1`` shows a traceback).
"""

import hydra
from omegaconf import DictConfig

from compress.config.refusal import one_line_errors, refuse
from compress.config.store import register_configs
from compress.infra.sweep_end import sweep_ended
from compress.pipeline.preflight import config_problems

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    problems = config_problems(cfg)
    if problems:
        refuse(problems)
    if cfg.job.isolate:
        from compress.pipeline.isolation import start_fork_server

        start_fork_server()
    from compress.pipeline.job import run_job  # heavy imports only once the config is valid

    run_job(cfg)


def cli() -> None:
    try:
        with one_line_errors():
            main()
    finally:
        sweep_ended()


if __name__ == "__main__":
    cli()

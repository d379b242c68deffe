"""``python -m compress.main [-m] key=value ...``: one job, or a sweep with ``-m``."""

import hydra
from omegaconf import DictConfig

from compress.schema import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from compress.job import run_job  # heavy imports only once the config is valid

    run_job(cfg)


if __name__ == "__main__":
    main()

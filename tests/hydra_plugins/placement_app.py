"""A Hydra task that only records where ``compress.parallel.own_cores`` put it, and when.

``python tests/sweeper/placement_app.py -m hydra/launcher=joblib job=0,1,2,3``
"""

import json
import os
import time
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig

from compress.infra.placement import own_cores

ConfigStore.instance().store(name="placement", node={"job": 0, "hold_s": 1.5})


@hydra.main(version_base="1.3", config_path=None, config_name="placement")
def main(cfg) -> None:
    with own_cores() as placement:
        start = time.time()
        time.sleep(cfg.hold_s)  # long enough for the launcher's other worker to overlap
        seen = sorted(os.sched_getaffinity(0))
        end = time.time()
    record = {"placement": placement, "affinity": seen, "start": start, "end": end}
    (Path(HydraConfig.get().runtime.output_dir) / "placement.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()

"""The record of a job keeps its keys: analysis, notebooks and older sweeps read them.

``tests/data/record_keys.json`` holds the flattened keys of a ``prune=0.5`` job at
``quant=fp32`` and ``quant=int8``, recorded before the package was restructured. A change of
key set must be deliberate: regenerate the file in the same commit that changes the record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compress.pipeline.job import run_job
from tests.conftest import COLD_LOAD, TINY_JOB

RECORDED = json.loads((Path(__file__).parents[2] / "data" / "record_keys.json").read_text())


def flattened_keys(record: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in record.items():
        if isinstance(value, dict) and value:
            keys |= flattened_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


@pytest.mark.parametrize("quant", sorted(RECORDED))
def test_record_keys_are_the_recorded_ones(compose_config, tiny_pretrained_dir, gate_passes, quant):
    overrides = [f"model.name_or_path={tiny_pretrained_dir}", *TINY_JOB, COLD_LOAD, "prune=0.5"]
    record = run_job(compose_config([*overrides, f"quant={quant}"]))
    assert record["status"] == "ok"
    keys = flattened_keys(record)
    assert sorted(keys - set(RECORDED[quant])) == []
    assert sorted(set(RECORDED[quant]) - keys) == []

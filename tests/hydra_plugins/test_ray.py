"""A 2x2 sweep through the Ray launcher, attached to a Ray head that the test starts on
loopback (the cluster lives in a child process that this test alone stops). The head runs in
another folder than the sweep, as on a cluster: records must still land in the sweep dir."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hydra_plugins.conftest import records

pytestmark = pytest.mark.slow

HEAD = """
import sys, ray
context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
print(context.address_info["gcs_address"], flush=True)
sys.stdin.read()  # until the test closes our stdin
ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    """The head's address, and the environment that lets a driver join it."""
    pytest.importorskip("ray", reason="the Ray launcher needs the extra: pip install -e '.[ray]'")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="pip install -e '.[ray]'")
    env = os.environ | {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # single-node mode: every address on loopback
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    head = subprocess.Popen(
        [sys.executable, "-c", HEAD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=env, cwd=tmp_path_factory.mktemp("ray-head"),
    )  # fmt: skip
    try:
        address = head.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), f"Ray head did not start: {address!r}"
        yield address, env
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()


def test_two_by_two_sweep_through_the_ray_launcher(ray_cluster, run_sweep, tmp_path):
    address, env = ray_cluster
    launcher = ["hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}"]
    factors = ["hydra/sweeper=doe", "prune=0.3,0.7", "quant=fp32,int8"]
    run_sweep(
        Path("study"), *launcher, *factors, env=env, cwd=tmp_path, fresh=True
    )  # a relative sweep dir
    done = records(tmp_path / "study")
    assert sorted(done) == [0, 1, 2, 3]
    levels = sorted((r["factors"]["prune"], r["factors"]["quant"]) for r in done.values())
    assert levels == [(0.3, "fp32"), (0.3, "int8"), (0.7, "fp32"), (0.7, "int8")]
    for record in done.values():
        assert record["status"] == "ok"
        assert record["placement"] == {"mode": "pinned", "cores": record["placement"]["cores"],
                                       "launcher": "RayLauncher"}  # fmt: skip
        assert len(record["placement"]["cores"]) == 1  # num_cpus: 1 in the preset

"""The inference server on a tiny saved model: in-process, and as a real uvicorn server
driven by the load generator."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import uvicorn
from fastapi.testclient import TestClient
from transformers import AutoTokenizer

from compress.backends import load_artifact
from compress.serving.loadgen import LoadSpec, run_load, summarise
from compress.serving.loadgen import main as loadgen_main
from compress.serving.server import MAX_BODY_BYTES, MAX_CHARS, MAX_TEXTS, create_app
from compress.storage.artifact import TOKENIZER_DIR

TEXTS = ["a gorgeous, witty film", "tedious and shallow", "it is a movie", "not bad at all"]


@pytest.fixture(scope="module")
def client(tiny_artifact: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tiny_artifact)) as test_client:
        yield test_client


def test_predictions_are_the_models(client, tiny_artifact):
    response = client.post("/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    model = load_artifact(tiny_artifact)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_artifact / TOKENIZER_DIR))
    with torch.inference_mode():
        logits = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
    expected = torch.softmax(logits, dim=-1)
    assert [p["label_id"] for p in predictions] == expected.argmax(-1).tolist()
    assert [p["label"] for p in predictions] == [
        model.config.id2label[i] for i in expected.argmax(-1).tolist()
    ]
    scores = torch.tensor([p["scores"] for p in predictions])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)


def test_padding_to_a_fixed_length_gives_the_same_labels(tiny_artifact, client):
    with TestClient(create_app(tiny_artifact, max_length=64, pad_to_max_length=True)) as padded:
        fixed = padded.post("/predict", json={"texts": TEXTS}).json()["predictions"]
    dynamic = client.post("/predict", json={"texts": TEXTS}).json()["predictions"]
    assert [p["label_id"] for p in fixed] == [p["label_id"] for p in dynamic]


def test_the_response_says_how_long_it_queued_and_was_served(client):
    header = client.post("/predict", json={"texts": TEXTS[:1]}).headers["server-timing"]
    names = [entry.split(";")[0].strip() for entry in header.split(",")]
    assert names == ["queue", "service", "app"]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["in_flight"] == 0


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"texts": []}, 422, "at least 1 item"),
        ({"text": 1}, 422, "Field required"),
        ({"texts": "a film"}, 422, "valid list"),
        ({"texts": [1, 2]}, 422, "valid string"),
        (
            {"texts": ["x"] * (MAX_TEXTS + 1)},
            413,
            f"65 texts in one request, accepted: at most {MAX_TEXTS}",
        ),
        (
            {"texts": ["x" * (MAX_CHARS + 1)]},
            413,
            f"a text of 10001 characters, accepted: at most {MAX_CHARS}",
        ),
    ],
)
def test_bad_requests_are_refused_with_the_limit(client, body, status, detail):
    response = client.post("/predict", json=body)
    assert response.status_code == status
    assert detail in str(response.json()["detail"])


def test_a_body_over_the_limit_is_refused_before_it_is_read(client):
    body = b'{"texts": ["' + b"x" * MAX_BODY_BYTES + b'"]}'
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"].endswith(f"accepted: at most {MAX_BODY_BYTES}")


def test_every_answer_echoes_the_request_id(client):
    response = client.post("/predict", json={"texts": TEXTS[:1]}, headers={"X-Request-ID": "r-7"})
    assert response.headers["x-request-id"] == "r-7" and response.json()["request_id"] == "r-7"
    made_up = client.post("/predict", json={"texts": TEXTS[:1]})
    assert made_up.headers["x-request-id"] == made_up.json()["request_id"] != ""
    assert (
        client.post("/predict", json={}, headers={"X-Request-ID": "r-8"}).headers["x-request-id"]
        == "r-8"
    )


def test_a_full_queue_answers_503_with_retry_after(tiny_artifact):
    with TestClient(create_app(tiny_artifact, max_queue=0)) as full:
        service = full.app.state.service
        service.in_flight = service.workers  # every slot taken, no room to wait
        response = full.post("/predict", json={"texts": TEXTS[:1]})
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
        health = full.get("/health").json()
        assert (health["status"], health["rejected"], health["queued"]) == ("saturated", 1, 0)
        service.in_flight = 0
        assert full.post("/predict", json={"texts": TEXTS[:1]}).status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_url(tiny_artifact: Path) -> Iterator[str]:
    """A real uvicorn server on a free port, in a thread of this process."""
    port = _free_port()
    config = uvicorn.Config(create_app(tiny_artifact), host="127.0.0.1", port=port,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_load_generator_against_a_live_server_stops_after_its_requests(live_url):
    spec = LoadSpec(rate_per_s=200.0, max_requests=25, max_duration_s=30.0, seed=3)
    results = asyncio.run(run_load(f"{live_url}/predict", spec))
    summary = summarise(results)
    assert summary["sent"] == summary["ok"] == 25
    assert all(set(r.server_timing_ms) == {"queue", "service", "app"} for r in results)
    timings = [r.server_timing_ms for r in results]
    assert all(t["app"] >= t["queue"] + t["service"] for t in timings)
    assert all(r.latency_ms >= r.server_timing_ms["app"] for r in results)


def test_load_generator_command_line_prints_a_summary(live_url, capsys):
    summary = loadgen_main([f"{live_url}/predict", "--rate", "100", "--requests", "5",
                            "--text", "fine", "--text", "awful"])  # fmt: skip
    assert summary["sent"] == summary["ok"] == 5
    assert '"ok": 5' in capsys.readouterr().out

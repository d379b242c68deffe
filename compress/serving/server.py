"""HTTP inference server for a saved compressed model.

``python -m compress.serving.server <artifact dir> --port 8000`` serves ``POST /predict`` with
``{"texts": [...]}`` and answers a label and the class probabilities per text.

The server is the queue that ``analysis.queueing`` models: ``workers`` model calls run at
once, each on a worker thread so the event loop keeps accepting requests, and the others
wait for a slot in arrival order (an asyncio semaphore wakes its waiters first in, first
out). Each response carries ``Server-Timing: queue;dur=..., service;dur=..., app;dur=...``
in ms: the wait for a slot; the slot's hold time (tokenization, forward pass,
post-processing); and the whole time in the app (body parsing, validation, queue, service,
serialization), which, less the queue wait, is how long the server was busy with it.

Abuse is answered, not absorbed: more than ``MAX_TEXTS`` texts, a text over ``MAX_CHARS``
characters or a body over ``MAX_BODY_BYTES`` get 413; a body of the wrong shape 422. At most
``max_queue`` requests wait for a slot: beyond that the server answers 503 with
``Retry-After`` at once instead of letting the queue grow, and ``/health`` says it is
saturated. Every response echoes the request's ``X-Request-ID`` (one is made up if the
client sent none), in the header and in the body of a prediction.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from transformers import AutoTokenizer

from compress.backends import load_artifact
from compress.infra.environment import default_threads
from compress.storage.artifact import TOKENIZER_DIR

MAX_TEXTS = 64
MAX_CHARS = 10_000
MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_QUEUE = 32
REQUEST_ID = "x-request-id"


class PredictRequest(BaseModel):
    texts: list[str] = Field(min_length=1)


class Prediction(BaseModel):
    label: str
    label_id: int
    scores: list[float]


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[Prediction]


def _check_size(texts: list[str]) -> None:
    if len(texts) > MAX_TEXTS:
        raise HTTPException(
            413, f"{len(texts)} texts in one request, accepted: at most {MAX_TEXTS}"
        )
    longest = max(len(text) for text in texts)
    if longest > MAX_CHARS:
        raise HTTPException(413, f"a text of {longest} characters, accepted: at most {MAX_CHARS}")


class Predictor:
    """The artifact's model and tokenizer, loaded once. ``pad_to_max_length`` pads every
    text to ``max_length`` tokens, the fixed shape the sweep's latency is measured at."""

    def __init__(self, artifact_dir: Path, max_length: int = 128, pad_to_max_length: bool = False):
        self.model = load_artifact(artifact_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(Path(artifact_dir) / TOKENIZER_DIR))
        self.labels = self.model.config.id2label
        self.padding = "max_length" if pad_to_max_length else True
        self.max_length = max_length

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str]) -> list[Prediction]:
        inputs = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=self.padding,
            return_tensors="pt",
        )  # fmt: skip
        probabilities = torch.softmax(self.model(**inputs).logits.float(), dim=-1)
        label_ids = probabilities.argmax(dim=-1).tolist()
        return [
            Prediction(label=self.labels[i], label_id=i, scores=row)
            for i, row in zip(label_ids, probabilities.tolist(), strict=True)
        ]


def server_timing(**durations_ms: float) -> str:
    """A W3C ``Server-Timing`` header value: ``name;dur=ms`` entries."""
    return ", ".join(f"{name};dur={ms:.3f}" for name, ms in durations_ms.items())


class HttpMiddleware:
    """ASGI middleware that acts on HTTP requests (the subclass's ``handle``) and passes the
    rest through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class RequestLimits(HttpMiddleware):
    """Refuses a body over ``MAX_BODY_BYTES`` with 413 (by its declared length, or while it
    streams in), and echoes ``X-Request-ID`` on every response."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        request_id = headers.get(REQUEST_ID.encode(), b"").decode() or uuid.uuid4().hex
        scope["state"] = {**scope.get("state", {}), "request_id": request_id}
        declared = int(headers.get(b"content-length", b"0") or 0)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                id_header = (REQUEST_ID.encode(), request_id.encode())
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        if declared > MAX_BODY_BYTES:
            await _too_large(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            await _too_large(scope, receive, send_with_id)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    detail = f"a body over {MAX_BODY_BYTES} bytes, accepted: at most {MAX_BODY_BYTES}"
    await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


class AppTiming(HttpMiddleware):
    """Adds ``app;dur=`` to ``Server-Timing``: from the server handing the request to the app
    until the response headers, i.e. all the server process does for the request except HTTP
    parsing and socket writes (queue wait included)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = server_timing(app=(time.perf_counter() - start) * 1e3).encode()
                message["headers"] = [*message.get("headers", []), (b"server-timing", value)]
            await send(message)

        await self.app(scope, receive, timed_send)


class ModelService:
    """The model behind the routes: at most ``workers`` model calls run at once, at most
    ``max_queue`` requests wait for one; ``in_flight`` counts both."""

    def __init__(self, predictor: Predictor, workers: int, max_queue: int) -> None:
        self.predictor = predictor
        self.workers = workers
        self.max_queue = max_queue
        self.in_flight = 0
        self.rejected = 0
        self.service_s = 0.05  # running mean of a model call, for Retry-After
        self.slots: asyncio.Semaphore | None = None

    def start(self) -> None:
        self.slots = asyncio.Semaphore(self.workers)  # bound to the server's event loop

    @property
    def queued(self) -> int:
        return max(0, self.in_flight - self.workers)

    @property
    def full(self) -> bool:
        """Whether a request arriving now would have to wait beyond ``max_queue``."""
        return self.in_flight >= self.workers + self.max_queue

    def health(self) -> dict:
        saturated = self.full
        return {
            "status": "saturated" if saturated else "ok",
            "architecture": type(self.predictor.model).__name__,
            "workers": self.workers,
            "in_flight": self.in_flight,
            "queued": self.queued,
            "max_queue": self.max_queue,
            "rejected": self.rejected,
        }

    def _refuse_when_full(self) -> None:
        if self.full:
            self.rejected += 1
            wait = math.ceil((self.queued + 1) * self.service_s / self.workers)
            detail = f"{self.queued} requests queued, accepted: at most {self.max_queue}; retry"
            raise HTTPException(503, detail, {"Retry-After": str(wait)})

    async def predict(self, texts: list[str]) -> tuple[list[Prediction], str]:
        """The predictions, and the Server-Timing header value (queue wait, model time)."""
        self._refuse_when_full()
        arrived = time.perf_counter()
        self.in_flight += 1
        try:
            async with self.slots:
                started = time.perf_counter()
                predictions = await run_in_threadpool(self.predictor, texts)
                finished = time.perf_counter()
        finally:
            self.in_flight -= 1
        self.service_s = 0.9 * self.service_s + 0.1 * (finished - started)
        timing = server_timing(queue=(started - arrived) * 1e3, service=(finished - started) * 1e3)
        return predictions, timing


def create_app(
    artifact_dir: Path,
    workers: int = 1,
    max_length: int = 128,
    pad_to_max_length: bool = False,
    max_queue: int = DEFAULT_MAX_QUEUE,
) -> FastAPI:
    """The server for one artifact; at most ``workers`` model calls run at once."""
    predictor = Predictor(artifact_dir, max_length, pad_to_max_length)
    service = ModelService(predictor, workers, max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield

    app = FastAPI(title="compress model server", lifespan=lifespan)
    app.state.service = service
    app.add_middleware(AppTiming)
    app.add_middleware(RequestLimits)

    @app.get("/health")
    async def health() -> dict:
        """Also says how many requests are queued or served now (0: the server is idle)."""
        return service.health()

    @app.post("/predict")
    async def predict(
        body: PredictRequest, request: Request, response: Response
    ) -> PredictResponse:
        _check_size(body.texts)
        predictions, timing = await service.predict(body.texts)
        response.headers["Server-Timing"] = timing
        return PredictResponse(request_id=request.state.request_id, predictions=predictions)

    return app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m compress.serving.server", description=__doc__)
    parser.add_argument("artifact_dir", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="model calls at once")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE,
                        help="requests waiting for a model call; beyond that, 503")  # fmt: skip
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per text, at most")
    parser.add_argument(
        "--pad", action="store_true", help="pad every text to --max-length (fixed shapes)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads or default_threads())
    app = create_app(args.artifact_dir, args.workers, args.max_length, args.pad, args.max_queue)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

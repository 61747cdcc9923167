"""The FastAPI application: ``create_app(cfg)`` builds it, ``careradar serve`` runs it.

The app is a set of routers over one shared :class:`Runner` (store + classifier), built once at
startup (lifespan) so the first request does not pay for loading the classifier or the language
models. Today there is one router, chat intake (``pipeline/web/intake.py``, authenticated by
request signature only); the triage board and the REST API will be routers added here, with
their own authentication.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from pipeline import __version__
from pipeline.config import AppConfig
from pipeline.items import Channel, Item, now_utc
from pipeline.nlp.language import detect_languages
from pipeline.runner import Runner
from pipeline.sinks.store import Store
from pipeline.web import intake

log = logging.getLogger(__name__)


def warm_up(runner: Runner) -> None:
    """Load the classifier and the language models now rather than on the first message."""
    probe = Item(
        source="warm-up",
        channel=Channel.CHAT,
        external_id="warm-up",
        text="Hello, my order has not arrived yet. Can you help?",
        created_at=now_utc(),
    )
    runner.classifier.classify([probe])
    detect_languages([probe.text, "Pesanan saya belum sampai, tolong semak."])


def create_app(
    cfg: AppConfig,
    *,
    store: Store | None = None,
    runner: Runner | None = None,
    clock: Callable[[], float] = time.time,
    max_body_bytes: int = intake.MAX_BODY_BYTES,
    preload: bool = True,
) -> FastAPI:
    """The web app for ``cfg``.

    Give ``runner`` (tests, embedding, alert hooks) or ``store``; with neither, the store at
    ``cfg.database.url`` is opened at startup and closed at shutdown. ``clock`` (unix seconds)
    is what signature timestamps are checked against. ``preload=False`` skips warming the
    classifier at startup.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened: Store | None = None
        active = runner
        if active is None:
            if store is None:
                opened = await run_in_threadpool(Store.open, cfg.database.url)
            active = Runner(cfg, store or opened)
        try:
            if preload:
                t0 = time.perf_counter()
                await run_in_threadpool(warm_up, active)
                log.info("classifier ready in %.1fs", time.perf_counter() - t0)
            app.state.runner = active
            yield
        finally:
            if opened is not None:
                opened.close()

    app = FastAPI(
        title="careradar",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # the Swagger UI loads scripts from a CDN; careradar runs offline
        redoc_url=None,
    )
    app.state.intake = intake.IntakeState(cfg=cfg, clock=clock, max_body_bytes=max_body_bytes)
    app.include_router(intake.router)
    return app


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server in a background thread; yields its base URL.

    For tests and benchmarks: port 0 picks a free port. The server stops (and the app's
    shutdown runs) when the block ends.
    """
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="careradar-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the web app did not start (see the log above)")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

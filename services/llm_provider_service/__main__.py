"""Command line: `python -m services.llm_provider_service serve|worker`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config

from services.llm_provider_service.app import create_app
from services.llm_provider_service.di import make_container
from services.llm_provider_service.settings import ConfigurationError, Settings, load_settings
from services.llm_provider_service.worker import QueueWorker

logger = logging.getLogger("llm_provider_service")


def _stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so both stop the process gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _serve(settings: Settings) -> None:
    app = create_app(settings)
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    config.graceful_timeout = settings.worker_shutdown_grace_seconds + 5.0
    stop = _stop_event()
    logger.info(
        "serving on http://%s:%d (environment=%s, provider=%s, queue=%s)",
        settings.host,
        settings.port,
        settings.environment.value,
        settings.default_provider.value,
        "redis" if settings.queue_persistence else "in-memory",
    )
    await serve(app, config, shutdown_trigger=stop.wait)


async def _work(settings: Settings) -> None:
    container = make_container(settings)
    try:
        worker = await container.get(QueueWorker)
        await worker.run(_stop_event())
    finally:
        await container.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm_provider_service")
    parser.add_argument("command", choices=["serve", "worker"])
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        settings.check_consistency()
        if args.command == "worker" and not settings.queue_persistence:
            raise ConfigurationError(
                "a standalone worker needs the shared Redis queue "
                "(LLM_PROVIDER_SERVICE_ENABLE_QUEUE_PERSISTENCE=true); the in-memory queue "
                "is drained by the worker inside `pdm run serve`"
            )
    except ConfigurationError as exc:
        print(f"llm_provider_service: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_serve(settings) if args.command == "serve" else _work(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m gateway`: serve the gateway (used by `make run` through navigator.stack)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from aiohttp import web

from gateway.app import SERVER_OPTIONS, Config, make_app
from settings import Settings, SettingsError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", action="append", dest="rasa_urls", metavar="URL",
                        help="a Rasa instance; repeat for several (round-robin); "
                             "default http://127.0.0.1:5005")
    parser.add_argument("--actions-url", default="http://127.0.0.1:5055")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        parser.error(str(exc))
    keys = settings.web_keys  # checked by Settings: each at least 32 random bytes
    config = Config(
        human_contact=settings.human_contact,
        session_rate=(settings.web_session_rate, 60.0),
        address_rate=(settings.web_address_rate, 60.0),
        new_conversation_rate=(settings.web_new_conversation_rate, 60.0),
        trusted_proxies=settings.trusted_proxies,
        rasa_urls=tuple(args.rasa_urls or ["http://127.0.0.1:5005"]),
        actions_url=args.actions_url,
        directory_url=settings.directory,
        rate_limit_url=settings.web_rate_limit_url,
        secure_cookies=settings.web_secure_cookies,
        session_lifetime=settings.web_session_hours * 3600,
        **({"secret": keys[0], "old_secrets": keys[1:]} if keys else {}),
    )
    if not keys:
        logging.warning("NAVIGATOR_WEB_SECRET is not set: conversation cookies are signed "
                        "with a random key and start over when the gateway restarts")
    asyncio.run(serve(make_app(config), args.host, args.port))


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then clean up (closes the client session)."""
    runner = web.AppRunner(app, **SERVER_OPTIONS)  # its access log: paths only
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()

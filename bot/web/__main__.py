"""`python -m bot.web`: serve the gateway (used by `make run` through bot.stack)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from aiohttp import web

from bot.web.gateway import SERVER_OPTIONS, Config, Gateway


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
    secret = os.environ.get("NAVIGATOR_WEB_SECRET")
    phone = os.environ.get("NAVIGATOR_HANDOFF_PHONE")
    hours = os.environ.get("NAVIGATOR_HANDOFF_HOURS")
    contact = f"call {phone}" + (f" ({hours})" if hours else "") if phone else None
    per_minute = {name: int(os.environ.get(f"NAVIGATOR_WEB_{name.upper()}_RATE", default))
                  for name, default in (("session", 20), ("address", 300))}
    config = Config(
        human_contact=contact,
        session_rate=(per_minute["session"], 60.0),
        address_rate=(per_minute["address"], 60.0),
        rasa_urls=tuple(args.rasa_urls or ["http://127.0.0.1:5005"]),
        actions_url=args.actions_url,
        directory_url=os.environ.get("NAVIGATOR_DIRECTORY_URL"),
        rate_limit_url=os.environ.get("NAVIGATOR_WEB_RATE_LIMIT_URL") or None,
        secure_cookies=os.environ.get("NAVIGATOR_WEB_SECURE_COOKIES", "").lower() == "true",
        **({"secret": secret.encode()} if secret else {}),
    )
    if not secret:
        logging.warning("NAVIGATOR_WEB_SECRET is not set: conversation cookies are signed "
                        "with a random key and start over when the gateway restarts")
    asyncio.run(serve(Gateway(config).app, args.host, args.port))


async def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then clean up (closes the client session)."""
    # access log without query strings or bodies (no personal data)
    runner = web.AppRunner(app, access_log_format='%a "%r" %s %b %Tf', **SERVER_OPTIONS)
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

"""`python -m bot.web`: serve the gateway (used by `make run` through bot.stack)."""

from __future__ import annotations

import argparse
import logging
import os

from aiohttp import web

from bot.web.gateway import Config, Gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", default="http://127.0.0.1:5005")
    parser.add_argument("--actions-url", default="http://127.0.0.1:5055")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    secret = os.environ.get("NAVIGATOR_WEB_SECRET")
    config = Config(
        rasa_url=args.rasa_url, actions_url=args.actions_url,
        directory_url=os.environ.get("NAVIGATOR_DIRECTORY_URL"),
        secure_cookies=os.environ.get("NAVIGATOR_WEB_SECURE_COOKIES", "").lower() == "true",
        **({"secret": secret.encode()} if secret else {}),
    )
    if not secret:
        logging.warning("NAVIGATOR_WEB_SECRET is not set: conversation cookies are signed "
                        "with a random key and start over when the gateway restarts")
    # access log without query strings or bodies (no personal data)
    web.run_app(Gateway(config).app, host=args.host, port=args.port,
                access_log_format='%a "%r" %s %b %Tf', print=None)


if __name__ == "__main__":
    main()

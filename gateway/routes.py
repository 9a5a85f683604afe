"""The route table: every URL the gateway answers."""

from __future__ import annotations

from aiohttp import web

from gateway import handlers


def add_routes(app: web.Application) -> None:
    """- `GET /` the demo page with the widget; `GET /static/...` the widget's files;
    - `GET /api/config` what the widget shows from the content (the emergency numbers);
    - `POST /api/chat` one turn; `POST /api/restart` a new conversation;
    - `GET /healthz` Rasa, the action server and the directory database;
    - `POST /webhooks/twilio/webhook` Twilio's webhook, forwarded to Rasa's Twilio channel."""
    app.router.add_get("/", handlers.index)
    app.router.add_static("/static/", handlers.STATIC, show_index=False)
    app.router.add_get("/api/config", handlers.widget_config)
    app.router.add_post("/api/chat", handlers.chat)
    app.router.add_post("/api/restart", handlers.restart)
    app.router.add_get("/healthz", handlers.health)
    app.router.add_post(handlers.TWILIO_PATH, handlers.twilio_webhook)

"""The request handlers. Each finds the application's state (the :class:`~gateway.app.Gateway`)
under ``request.app[GATEWAY]``.

Bad input gets a clear JSON error: 400 (malformed), 413 (too big), 415 (not JSON), 429 (too
many, with Retry-After), 503 (the assistant is down). Message text is never logged.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientConnectorError, ClientError, ClientTimeout, web

from gateway.middlewares import error
from gateway.offers import INTENT_PREFIX, as_text
from gateway.ratelimit import client_address
from gateway.sessions import new_session_id, sign
from knowledge import shapes
from knowledge.emergency import emergency_line

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
MAX_MESSAGE_CHARS = 1000
EMERGENCY = emergency_line()["text"]  # each region's number, from knowledge/helplines.yml
# The demo page's emergency line as the file has it, replaced with EMERGENCY when served.
PAGE_EMERGENCY = "In an emergency, call your local emergency number."
NO_ANSWER = ("Sorry, part of the assistant isn't working right now, so I couldn't answer. "
             "Please try again in a few minutes.")
UNAVAILABLE = ("Sorry, the assistant isn't available right now. Please try again in a few "
               f"minutes. {EMERGENCY}")
# Twilio's webhook, forwarded to Rasa's Twilio channel (bot/channels/twilio/): the same size
# limit as the channel's, and only the headers it needs (its signature check uses
# NAVIGATOR_TWILIO_PUBLIC_URL; Host and X-Forwarded-Proto go along for any other check).
TWILIO_PATH = "/webhooks/twilio/webhook"
TWILIO_MAX_BODY_BYTES = 64 * 1024
TWILIO_HEADERS = ("Content-Type", "X-Twilio-Signature", "I-Twilio-Idempotency-Token",
                  "User-Agent", "Host", "X-Forwarded-Proto")


async def index(_request: web.Request) -> web.Response:
    """The demo page, its emergency line filled in from knowledge/helplines.yml."""
    page = await asyncio.to_thread((STATIC / "index.html").read_text, encoding="utf-8")
    page = page.replace(PAGE_EMERGENCY, html.escape(EMERGENCY), 1)
    return web.Response(text=page, content_type="text/html")


WELCOME = shapes.welcome()
# The welcome's buttons are offered before any turn, so any conversation may send them.
WELCOME_PAYLOADS = frozenset(b.payload for b in WELCOME.buttons)


async def widget_config(_request: web.Request) -> web.Response:
    """What the widget shows that lives in the content: the emergency numbers
    (:func:`knowledge.emergency.emergency_line`), as data it turns into links, and the
    welcome message with its topic buttons (knowledge/replies.yml)."""
    return web.json_response({
        "emergency": emergency_line(),
        "welcome": {"text": WELCOME.text, "buttons": [{"title": b.title, "payload": b.payload}
                                                      for b in WELCOME.buttons]},
    })


def _set_cookie(gateway: Gateway, response: web.StreamResponse, session_id: str) -> None:
    config = gateway.config
    response.set_cookie(gateway.cookie, sign(config.secret, session_id), httponly=True,
                        samesite="Strict", secure=config.secure_cookies, path="/",
                        max_age=str(int(config.session_lifetime)))


async def chat(request: web.Request) -> web.Response:
    """`POST /api/chat` `{"message": "..."}` → `{"messages": [{"text", "buttons", and for a
    reply with parts "cards", "after", "sources", "labels"}]}`."""
    gateway = request.app[GATEWAY]
    address = client_address(request.remote, request.headers, gateway.trusted_proxies)
    wait = await gateway.address_limits.wait_for(address)
    if wait:
        return _too_fast(wait)
    if request.content_type != "application/json":
        return error(415, "not_json", "Please send JSON: {\"message\": \"...\"}.")
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        return error(400, "bad_json", "Sorry, I couldn't read that message.")
    try:
        raw = await request.read()
    except web.RequestPayloadError:
        return error(400, "bad_json", "Sorry, I couldn't read that message.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return error(400, "bad_json", "Sorry, I couldn't read that message.")
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return error(400, "no_message", "Please type a message.")
    text = "".join(ch for ch in message if ch in "\n\t" or ch.isprintable()).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        return error(413, "too_long", f"Please keep messages under {MAX_MESSAGE_CHARS} "
                     "characters.")
    if not text:
        return error(400, "no_message", "Please type a message.")
    session_id = await gateway.session(request.cookies.get(gateway.cookie))
    fresh = session_id is None
    if fresh:  # a request without a cookie must not escape the per-conversation limit
        wait = await gateway.new_conversation_limits.wait_for(address)
        if wait:
            return _too_fast(wait)
    session_id = session_id or new_session_id()
    wait = await gateway.session_limits.wait_for(session_id)
    if wait:
        return _too_fast(wait)
    # "/..." is an intent to Rasa: only a button the assistant offered here may send one.
    if (text.startswith(INTENT_PREFIX) and text not in WELCOME_PAYLOADS
            and not await gateway.offers.offered(session_id, text)):
        text = as_text(text)
        if not text:
            return error(400, "no_message", "Please type a message.")
    try:
        replies = await gateway.ask_rasa(session_id, text)
    except (ClientError, asyncio.TimeoutError, ValueError):
        log.warning("Rasa did not answer")
        response = error(503, "unavailable", UNAVAILABLE)
    else:
        replies = widget_messages(replies)
        await gateway.offers.remember(session_id, [
            *(b["payload"] for m in replies for b in m["buttons"]),
            *(c["detail"] for m in replies for c in m.get("cards", []) if c.get("detail"))])
        if not replies and await gateway.probe(f"{gateway.config.actions_url}/health") != "ok":
            # Rasa answers nothing when its action server is down: say so, kindly.
            log.warning("action server down: answered with an apology")
            replies = widget_messages([{"text": apology(gateway.config.human_contact)}])
        response = web.json_response({"messages": replies})
    if fresh:
        _set_cookie(gateway, response, session_id)
    return response


def apology(human_contact: str | None) -> str:
    """What to say when the action server is down: who else can help, and the emergency
    numbers."""
    person = (f" To talk to a person, {human_contact}." if human_contact else
              " Your doctor, nurse or GP can also help.")
    return f"{NO_ANSWER}{person} {EMERGENCY}"


async def restart(request: web.Request) -> web.Response:
    """`POST /api/restart`: a new conversation (a new id; counted per address)."""
    gateway = request.app[GATEWAY]
    address = client_address(request.remote, request.headers, gateway.trusted_proxies)
    wait = await gateway.new_conversation_limits.wait_for(address)
    if wait:
        return _too_fast(wait)
    old = await gateway.session(request.cookies.get(gateway.cookie))
    if old:  # the old id no longer opens the old conversation, on any replica
        await gateway.revoked.add(old, gateway.config.session_lifetime)
    response = web.json_response({"messages": []})
    _set_cookie(gateway, response, new_session_id())
    return response


def _too_fast(wait: float) -> web.Response:
    return error(429, "rate_limited", "You're sending messages very fast. Please wait a "
                 "moment.", **{"Retry-After": str(int(wait) + 1)})


async def health(request: web.Request) -> web.Response:
    """`GET /healthz`: Rasa, the action server and the directory database (the report is
    reused for a few seconds, so a flood of probes does not become a flood upstream)."""
    gateway = request.app[GATEWAY]
    config = gateway.config

    async def probe() -> tuple[dict[str, str], bool]:
        rasa, actions, database = await asyncio.gather(
            asyncio.gather(*(gateway.probe(f"{url}/") for url in config.rasa_urls)),
            gateway.probe(f"{config.actions_url}/health"),
            asyncio.to_thread(_database_ok, config.directory_url),
        )
        up = sum(r == "ok" for r in rasa)
        report = {
            "rasa": "ok" if up == len(rasa) else f"{up} of {len(rasa)} up" if up else "down",
            "actions": actions,
            "database": database,
        }
        ok = all(v == "ok" for v in report.values())
        serving = up > 0 and actions == "ok" and database == "ok"  # some Rasa down: still on
        return {"status": "ok" if ok else "degraded", **report}, serving

    report, serving = await gateway.health(probe)
    return web.json_response(report, status=200 if serving else 503)


CARD_FIELDS = ("n", "name", "distance", "kind", "address", "phone", "tel", "map", "detail")
# What a link or a payload in a reply's parts may be; anything else is left out.
SAFE_VALUES = {"tel": re.compile(r"tel:\+?[0-9]{2,15}"), "map": re.compile(r"https://\S+"),
               "url": re.compile(r"https://\S+"), "detail": re.compile(r"/[a-z_]+(\{.*\})?")}


def _strings(data: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """Only the named fields of a mapping, each a string (or a whole number), links and
    payloads only of their safe form; anything else is left out."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for key in keys:
        value = data.get(key)
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            continue
        if key in SAFE_VALUES and not (isinstance(value, str)
                                       and SAFE_VALUES[key].fullmatch(value)):
            continue
        out[key] = value
    return out


def _parts(reply: dict[str, Any]) -> dict[str, Any]:
    """A reply's parts for the widget, field by field (nothing else passes)."""
    return {
        "text": reply.get("text") if isinstance(reply.get("text"), str) else "",
        "cards": [_strings(c, CARD_FIELDS) for c in reply.get("cards") or []
                  if isinstance(c, dict)],
        "after": reply.get("after") if isinstance(reply.get("after"), str) else "",
        "sources": [source for source in (_strings(s, ("title", "short", "url"))
                                          for s in reply.get("sources") or [])
                    if source.get("url") and source.get("title")],
        "labels": {k: v for k, v in (reply.get("labels") or {}).items()
                   if isinstance(k, str) and isinstance(v, str)}
        if isinstance(reply.get("labels"), dict) else {},
    }


def _plain_messages(reply: dict[str, Any]) -> list[str]:
    """The messages Rasa's REST channel made of a reply's plain text: one, or (when it has
    no buttons) one per paragraph. Empty when the parts cannot be read."""
    try:
        return shapes.plain_text(reply).strip().split("\n\n")
    except (AttributeError, KeyError, TypeError, ValueError):
        return []


def widget_messages(raw: list[Any]) -> list[dict[str, Any]]:
    """Rasa's messages for the widget: text and buttons, and a reply's parts (cards, text
    after them, titled sources). Rasa's REST channel sends a reply as its plain text and
    buttons (a text without buttons cut into one message per paragraph), then its parts as a
    separate custom message: the parts replace those plain messages."""
    out: list[dict[str, Any]] = []
    for message in raw:
        if not isinstance(message, dict):
            continue
        custom = message.get("custom") if isinstance(message.get("custom"), dict) else {}
        buttons = [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                   for b in message.get("buttons") or [] if isinstance(b, dict)]
        if isinstance(custom.get("reply"), dict):
            pieces = _plain_messages(custom["reply"])
            for shown in (pieces, ["\n\n".join(pieces)]):  # cut into paragraphs, or whole
                tail = out[-len(shown):] if shown and len(out) >= len(shown) else []
                if tail and all("labels" not in m for m in tail) and (
                        [m["text"] for m in tail] == shown):
                    buttons = [b for m in tail for b in m["buttons"]] or buttons
                    del out[-len(shown):]
                    break
            out.append({**_parts(custom["reply"]), "buttons": buttons})
            continue
        if message.get("text") or buttons:
            out.append({"text": message.get("text") or "", "buttons": buttons})
    return out


def _database_ok(url: str | None) -> str:
    from sqlalchemy import text

    from providers import db

    try:
        with db.session_factory(url)() as session:
            session.execute(text("SELECT 1 FROM providers LIMIT 1"))
        return "ok"
    except Exception:  # noqa: BLE001 - any failure is "down", reported, never raised
        return "down"


def _plain(status: int, text: str) -> web.Response:
    """A short fixed text for Twilio (never echoes the request)."""
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is longer than ``limit`` (never buffers more)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def twilio_webhook(request: web.Request) -> web.Response:
    """`POST /webhooks/twilio/webhook`: Twilio's request, passed to Rasa's Twilio channel with
    its body and signature intact (413 beyond the channel's limit, before reading it all);
    Rasa's answer (TwiML, or 403 for a bad signature) passed back."""
    gateway = request.app[GATEWAY]
    if request.headers.get("Content-Encoding", "identity").lower() != "identity":
        return _plain(400, "Unsupported Content-Encoding.")
    try:
        body = await _read_at_most(request, TWILIO_MAX_BODY_BYTES)
    except (web.RequestPayloadError, ConnectionError):
        return _plain(400, "Malformed request body.")
    if body is None:
        return _plain(413, "Request body too large.")
    headers = {name: request.headers[name] for name in TWILIO_HEADERS if name in request.headers}
    headers.setdefault("X-Forwarded-Proto", request.scheme)
    assert gateway.client is not None
    for base in gateway.rasa_order():
        try:
            async with gateway.client.post(f"{base}{TWILIO_PATH}", data=body, headers=headers,
                                           timeout=ClientTimeout(total=gateway.config.timeout)
                                           ) as resp:
                answer = await resp.content.read(TWILIO_MAX_BODY_BYTES)
                return web.Response(status=resp.status, body=answer, headers={
                    "Content-Type": resp.headers.get("Content-Type", "text/plain")})
        except ClientConnectorError:  # not taken in: safe to try the next instance
            log.warning("a Rasa instance refused the connection; trying the next one")
        except (ClientError, asyncio.TimeoutError):
            break  # may have been taken in: Twilio retries on its own
    log.warning("Rasa did not answer a Twilio webhook")
    return _plain(503, "Service unavailable.")

"""Twilio SMS and WhatsApp channel: signed webhooks in, asynchronous Twilio REST calls out.

Named in credentials.yml as ``bot.channels.twilio.TwilioChannel:``. Twilio posts each
inbound message to ``POST /webhooks/twilio/webhook``; ``GET /webhooks/twilio/`` is a health
check. Unlike Rasa's stock connector this one

* rejects requests whose ``X-Twilio-Signature`` does not match (403), computed over the
  public URL Twilio posts to, so it works behind a proxy (:mod:`.signature`), and bodies over
  64 KB before Rasa's web server buffers them (413);
* takes a message once: a webhook Twilio retries with the same ``MessageSid`` is answered
  and ignored (:class:`.webhook.RecentIds`; in each Rasa process's memory, bounded, expiring);
* answers 503, never 500, while its settings are missing (:mod:`.config`);
* replies kindly to messages without text instead of crashing (:mod:`.webhook`);
* honours STOP / START / HELP, remembering opt-outs (as HMAC-SHA-256 hashes keyed with
  ``NAVIGATOR_NUMBER_SECRET``) across restarts (:mod:`.optouts`);
* turns buttons into numbered options and a reply of "1", "2", ... into that option (the
  options are read back from the tracker store, so any Rasa instance understands the reply;
  :mod:`.options`);
* splits long replies at sentence boundaries, keeping links whole (:mod:`.sending`);
* sends with aiohttp, never blocking the event loop, one conversation's messages in order
  (:mod:`.sending`).

No secret lives in a file: every setting falls back to a ``NAVIGATOR_TWILIO_*`` variable.
Message text and phone numbers are never logged at INFO or above. The emergency numbers in
its replies come from knowledge/helplines.yml (:mod:`knowledge.emergency`).
"""

from __future__ import annotations

from bot.channels.twilio.config import (
    DEFAULT_API_BASE,
    MIN_LENGTH,
    TWILIO_MAX_LENGTH,
    TwilioConfig,
    default_var_dir,
    legacy_number_hash,
    number_hash,
    number_ref,
)
from bot.channels.twilio.options import (
    OPTIONS_HEADER,
    Option,
    choose_option,
    format_options,
    offered_options,
    options_from_buttons,
    parse_options,
)
from bot.channels.twilio.optouts import OPT_OUT_FILE, OptOutStore, SqlOptOutStore
from bot.channels.twilio.sending import (
    SEND_ATTEMPTS,
    SEND_TIMEOUT,
    TwilioOutput,
    TwilioSender,
    split_message,
    text_size,
)
from bot.channels.twilio.signature import (
    FORM_TYPE,
    MAX_BODY_BYTES,
    MAX_FORM_FIELDS,
    FormParams,
    SignatureCheck,
    parse_form,
)
from bot.channels.twilio.webhook import (
    EMPTY_TWIML,
    ERROR_REPLY,
    HELP_TEXT,
    HELP_WORDS,
    NO_TEXT_REPLY,
    START_WORDS,
    STOP_WORDS,
    WELCOME_TEXT,
    YES,
    RecentIds,
    TwilioChannel,
    WebhookReply,
    read_capped,
)

__all__ = [
    "DEFAULT_API_BASE", "EMPTY_TWIML", "ERROR_REPLY", "FORM_TYPE", "HELP_TEXT", "HELP_WORDS",
    "MAX_BODY_BYTES", "MAX_FORM_FIELDS", "MIN_LENGTH", "NO_TEXT_REPLY", "OPTIONS_HEADER",
    "OPT_OUT_FILE", "SEND_ATTEMPTS", "SEND_TIMEOUT", "START_WORDS", "STOP_WORDS",
    "TWILIO_MAX_LENGTH", "WELCOME_TEXT", "YES", "FormParams", "Option", "OptOutStore",
    "RecentIds", "SignatureCheck", "SqlOptOutStore", "TwilioChannel", "TwilioConfig",
    "TwilioOutput", "TwilioSender", "WebhookReply", "choose_option", "default_var_dir",
    "format_options", "legacy_number_hash", "number_hash", "number_ref", "offered_options",
    "options_from_buttons", "parse_form", "parse_options", "read_capped", "split_message",
    "text_size",
]

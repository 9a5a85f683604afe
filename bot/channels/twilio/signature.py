"""Whether a webhook request comes from Twilio: the form body read as Twilio signed it, and
its ``X-Twilio-Signature`` checked over the public URL Twilio posts to (so the check holds
behind a proxy, where the URL this server sees is another)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from twilio.request_validator import RequestValidator

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200


class FormParams(dict):
    """First value per field (a dict for code), all values for the signature (``getall``)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__()
        self._all: dict[str, list[str]] = {}
        for key, value in pairs:
            self._all.setdefault(key, []).append(value)
            self.setdefault(key, value)

    def getall(self, key: str) -> list[str]:
        return self._all[key]


def parse_form(body: bytes) -> FormParams:
    """The URL-encoded form; raises UnicodeDecodeError or ValueError when malformed."""
    # keep_blank_values: Twilio signs empty fields (e.g. "Body=") too.
    pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                      max_num_fields=MAX_FORM_FIELDS)
    return FormParams(pairs)


class SignatureCheck:
    """Twilio's request validator for our auth token and public URL. Without either,
    nothing is accepted."""

    def __init__(self, auth_token: str | None, public_url: str | None) -> None:
        self._validator = RequestValidator(auth_token) if auth_token else None
        self.public_url = public_url

    def signed_by_twilio(self, params: FormParams, signature: str) -> bool:
        if self._validator is None or not self.public_url:
            return False
        return bool(self._validator.validate(self.public_url, params, signature))

"""One person chatting with the real Rasa server over its REST channel, as the tests do."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

from navigator import stack


class User:
    """One person chatting over the REST channel (a fresh sender id each)."""

    def __init__(self, servers: stack.Stack) -> None:
        self.url = servers.rest_url
        self.id = f"test-{uuid.uuid4().hex}"

    def say(self, text: str) -> list[dict[str, Any]]:
        body = json.dumps({"sender": self.id, "message": text}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

"""A real HTTP server on 127.0.0.1 for tests: aiohttp in its own thread and event loop, serving
the routes it is given and recording every request it is sent."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict


@dataclass(frozen=True)
class Received:
    """One request as it arrived: method, path (with the query), headers and body."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalServer:
    """Serves ``routes`` (aiohttp route definitions, e.g. ``web.post(path, handler)``) on a
    free port of 127.0.0.1 between ``start()`` and ``stop()``. Every request is recorded in
    ``requests`` as it arrives, before its handler runs; ``changed`` is notified then, and
    subclasses notify it when they record something of their own (see ``wait_until``)."""

    def __init__(self, routes: Iterable[web.RouteDef]) -> None:
        self.requests: list[Received] = []
        self.changed = threading.Condition()
        self.port = 0
        self._routes = list(routes)
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The server's base URL (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalServer:
        """Start serving; returns once the port is bound (or raises why it could not be)."""
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if self._error is not None:
            raise RuntimeError(f"{type(self).__name__} did not start") from self._error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait (without polling) until ``done()`` holds, checked whenever ``changed`` is
        notified; whether it held within ``timeout`` seconds."""
        with self.changed:
            return self.changed.wait_for(done, timeout)

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        received = Received(request.method, request.path_qs, CIMultiDict(request.headers),
                            await request.read())  # kept: handlers can still read the body
        with self.changed:
            self.requests.append(received)
            self.changed.notify_all()
        return await handler(request)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(middlewares=[self._record])
        app.add_routes(self._routes)
        runner = web.AppRunner(app)
        try:
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
            self.port = runner.addresses[0][1]
        except BaseException as err:  # reported by start()
            self._error = err
            self._started.set()
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

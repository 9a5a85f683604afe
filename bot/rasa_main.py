"""Rasa's own command line (``python -m bot.rasa_main run ...``), with two speed fixes and one
safety fix applied.

Profiling the Rasa server under load (py-spy, see docs/performance.md) showed 91% of
its CPU time in ``jsonschema.validate``: Rasa checks every action server reply against a
schema, and ``jsonschema.validate`` first checks *the schema itself* against the JSON Schema
meta-schema, on every call. That meta-check costs tens of milliseconds and never changes.

:func:`install` replaces ``jsonschema.validate`` with a version that checks each distinct
schema once, keeps the compiled validator, and then validates exactly as before (same
validator class, same ``best_match`` error).

The second hot spot (10% of CPU) was ``Event.resolve_by_type``: for every stored event it
loads, Rasa walks the whole ``Event`` class tree (``all_subclasses`` plus ``isabstract``) to
find the class for a type name. :func:`install` puts a name-to-class table in front of it,
built from the same walk in the same order; a name not in the table goes to Rasa's own
method, which still handles unknown and legacy names.

The safety fix: after a hand-off the conversation is paused and Rasa runs no action at all
for new messages. :func:`install` lets one through: a message the NLU routed to a crisis
intent still gets ``action_crisis_response`` (which also says the conversation is waiting for
staff); the conversation stays paused. Nothing else in Rasa is changed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import jsonschema
from jsonschema import exceptions, validators

_MAX_SCHEMAS = 64
_compiled: dict[str, Any] = {}
_original_validate = jsonschema.validate


def cached_validate(instance: Any, schema: Any, cls: Any = None, *args: Any,
                    **kwargs: Any) -> None:
    """``jsonschema.validate`` that checks and compiles each distinct schema only once."""
    if cls is not None or args or kwargs:
        _original_validate(instance, schema, cls, *args, **kwargs)
        return
    key = json.dumps(schema, sort_keys=True, default=repr)
    validator = _compiled.get(key)
    if validator is None:
        validator_class = validators.validator_for(schema)
        validator_class.check_schema(schema)
        validator = validator_class(schema)
        if len(_compiled) < _MAX_SCHEMAS:
            _compiled[key] = validator
    error = exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


def _event_types() -> dict[str, type]:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    table: dict[str, type] = {}
    for cls in all_subclasses(Event):  # the first class with a name wins, as in Rasa
        table.setdefault(cls.type_name, cls)
    return table


def _cached_resolve_by_type(original: Callable) -> Callable:
    table: dict[str, type] = {}

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        if type_name not in table:
            table.update(_event_types())  # also picks up classes imported since
        return table.get(type_name) or original(type_name, default)

    return resolve_by_type


CRISIS_ACTION = "action_crisis_response"


def _crisis_even_when_paused(original: Callable) -> Callable:
    from rasa.core.policies.policy import PolicyPrediction

    async def _run_prediction_loop(self: Any, output_channel: Any, tracker: Any) -> None:
        message = tracker.latest_message
        intent = str((message.intent or {}).get("name") or "") if message else ""
        if tracker.is_paused() and intent.startswith("crisis_"):
            action = self._get_action(CRISIS_ACTION)
            prediction = PolicyPrediction.for_action_name(self.domain, CRISIS_ACTION)
            await self._run_action(action, tracker, output_channel, self.nlg, prediction)
            return
        await original(self, output_channel, tracker)

    _run_prediction_loop.navigator_crisis = True  # type: ignore[attr-defined]
    return _run_prediction_loop


def install() -> None:
    """Put the two caches in front of Rasa's slow paths and let a crisis through a pause
    (see the module docstring)."""
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import Event

    jsonschema.validate = cached_validate  # Rasa imports it at call time
    if not getattr(Event.resolve_by_type, "navigator_cached", False):
        resolve = _cached_resolve_by_type(Event.resolve_by_type)
        resolve.navigator_cached = True  # type: ignore[attr-defined]
        Event.resolve_by_type = staticmethod(resolve)  # type: ignore[method-assign]
    loop = MessageProcessor._run_prediction_loop
    if not getattr(loop, "navigator_crisis", False):
        MessageProcessor._run_prediction_loop = _crisis_even_when_paused(loop)  # type: ignore


def with_api_token(argv: list[str], token: str | None) -> list[str]:
    """``argv`` with ``--auth-token`` from the environment (``NAVIGATOR_RASA_API_TOKEN``) when
    it enables the HTTP API. Rasa only reads the token from its command line; added here, in
    the process, it never appears in the process list (/proc/<pid>/cmdline keeps the original
    arguments). ``--enable-api`` without a token is refused: the API would be open."""
    if "--enable-api" not in argv or "--auth-token" in argv or "-t" in argv:
        return argv
    if not token:
        raise SystemExit("error: --enable-api needs NAVIGATOR_RASA_API_TOKEN (Rasa's HTTP API "
                         "is never switched on without a token)")
    return [*argv, "--auth-token", token]


def main() -> None:
    """Run ``rasa`` with the arguments given, after :func:`install`."""
    from settings import Settings

    argv = with_api_token(sys.argv[1:], Settings.from_env().rasa_api_token)
    install()
    from rasa.__main__ import main as rasa

    sys.argv = ["rasa", *argv]
    rasa()


if __name__ == "__main__":
    main()

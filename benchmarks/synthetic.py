"""A synthetic lm1b-like TFDS corpus for benchmarks/input.py (a module of its own, so that
grain's worker processes import the builder class once, by name)."""

import numpy as np
import tensorflow_datasets as tfds

WORDS = 20_000


class SyntheticDocs(tfds.core.GeneratorBasedBuilder):
    """Documents of Zipf-distributed words w0 … w19999, ~27 words each (lm1b-like)."""

    VERSION = tfds.core.Version('1.0.0')
    docs = 1_000_000

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({'text': tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {'train': self._generate_examples()}

    def _generate_examples(self):
        rng = np.random.default_rng(0)
        for start in range(0, self.docs, 10_000):
            lengths = rng.geometric(1 / 27, 10_000)
            words = rng.zipf(1.2, lengths.sum()) % WORDS
            for i, doc in enumerate(np.split(words, np.cumsum(lengths)[:-1])):
                yield start + i, {'text': ' '.join(f'w{w}' for w in doc)}

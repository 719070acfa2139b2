"""Input pipelines: TFDS sources, local TFDS builders and preprocessing ops."""

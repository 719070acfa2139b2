"""wordlab: a JAX/Flax research codebase for word-level language models."""

import os

# TensorFlow only reads data here, and logs its start-up (absl, oneDNN, CPU features) on
# stderr as it is imported: these must be set before that import, which in the tools and
# data modules happens at module level, before any main() runs. Set here, they cover every
# `python -m research.…` entry point and any script importing research before TensorFlow.
# Defaults only: a user's own setting wins. (oneDNN speeds up TF math, which nothing uses.)
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')

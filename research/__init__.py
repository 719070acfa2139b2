"""wordlab: a JAX/Flax research codebase for word-level language models."""

"""Import/export of Hugging Face checkpoints (safetensors) to and from our parameter trees.

Converters may import `research.models`, never the trainer or the data layer.
"""

"""One frozen description of a transformer, shared by every module of a model.

A model is built from one `TransformerConfig` (made once, from the run config's `model`
section, by `TransformerConfig.from_config`) that every module receives whole: the
embedding, norms, attention, MLP and blocks read their dims, dtypes and options from it
instead of re-declaring them, so a setting cannot reach one module and miss another. The
architecture presets (`ARCHS`) are data: the fields an arch fixes, applied over the model
section. Being frozen (and hashable) it can be a module attribute and a static jit argument.
"""

import dataclasses
from typing import Any

import jax.numpy as jnp

# model.arch -> the fields that arch fixes (over the model section's values)
ARCHS = {
    'gpt': {},  # pre-LN causal decoder, tanh GELU, learned or rotary positions
    'seq2seq': {},  # pre-LN encoder-decoder (research/models/seq2seq.py)
    'bag': {},  # bag of embeddings (reads d_model, dropout, dtypes)
    # The original BERT layout: post-LN with an embedding LayerNorm, erf GELU, LayerNorm
    # epsilon 1e-12, learned positions and two token types (Hugging Face checkpoints load into it).
    'bert': dict(
        pre_norm=False, activation='gelu_exact', layer_norm_epsilon=1e-12, positions='learned', type_vocab_size=2
    ),
    # The modern encoder: pre-LN with a final LayerNorm, rotary positions, no token types.
    'encoder': dict(
        pre_norm=True, activation='gelu_exact', layer_norm_epsilon=1e-6, positions='rotary', type_vocab_size=0
    ),
}
POSITIONS = ('learned', 'rotary')
ATTENTION = ('xla', 'cudnn')  # jax.nn.dot_product_attention's `implementation`


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Everything that shapes a model's modules (defaults: the 'tiny' GPT layout)."""

    arch: str = 'gpt'  # the ARCHS preset it was made with (research/flops.py counts by it)
    vocab_size: int = 64
    num_layers: int = 2
    d_model: int = 128
    num_heads: int = 4
    mlp_dim: int = 512
    max_len: int = 512  # rows of the learned position tables; longest decoded sequence
    type_vocab_size: int = 0  # BERT segment (token type) embeddings; 0: none
    dtype: Any = jnp.float32  # compute dtype (a name or a dtype; stored as a jnp dtype)
    param_dtype: Any = jnp.float32  # storage dtype
    dropout: float = 0.0
    positions: str = 'learned'  # or 'rotary'
    pre_norm: bool = True  # True: x + f(ln(x)) and a final LayerNorm; False: BERT's post-LN ln(x + f(x))
    layer_norm_epsilon: float = 1e-6
    activation: str = 'gelu'  # a layers.ACTIVATIONS name
    tie_embeddings: bool = True  # decoder: output = token table; seq2seq: one table for source, target, output
    remat: str = 'none'  # a layers.REMAT_POLICIES name
    scan_layers: bool = False  # one layer body under nn.scan (layers.stack)
    decode: bool = False  # autoregressive decoding on a KV cache ('cache' collection)
    attention: str = 'xla'  # fused attention (half precision): 'xla' or 'cudnn' (GPU only)

    def __post_init__(self):
        # Names ('bfloat16') and dtypes alike become one canonical, hashable jnp dtype.
        object.__setattr__(self, 'dtype', jnp.dtype(self.dtype))
        object.__setattr__(self, 'param_dtype', jnp.dtype(self.param_dtype))
        if self.positions not in POSITIONS:
            raise ValueError(f'positions must be one of {POSITIONS}, got {self.positions!r}')
        if self.attention not in ATTENTION:
            raise ValueError(f'attention must be one of {ATTENTION}, got {self.attention!r}')

    def replace(self, **changes) -> 'TransformerConfig':
        """A copy with `changes` (e.g. decode=True for the sampling model)."""
        return dataclasses.replace(self, **changes)

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @classmethod
    def from_config(cls, model, vocab_size: int, **overrides) -> 'TransformerConfig':
        """The config of a run's `model` section (a ConfigDict or dict): its fields of the same
        name, then the preset of its `arch` (or of overrides['arch']), then `overrides` (e.g.
        decode=True). Fields the section lacks (an older run's config.json) keep their defaults."""
        values = {f.name: model[f.name] for f in dataclasses.fields(cls) if f.name in model}
        arch = overrides.get('arch', values.get('arch', cls.arch))
        if arch not in ARCHS:
            raise ValueError(f'unknown model arch {arch!r}; one of {sorted(ARCHS)}')
        return cls(**{**values, **ARCHS[arch], 'vocab_size': vocab_size, **overrides, 'arch': arch})

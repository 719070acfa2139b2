"""Transformer building blocks shared by every model family.

Shapes: B batch, T query length, S key length, D model dim, H heads, K head dim,
F MLP dim, V vocab. Parameters carry logical axis names; softmax runs in float32.
Every module takes the model's one TransformerConfig (research/models/config.py) for its
dims, dtypes and options; its own attributes say only where it differs (e.g. `causal`).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from research.models import paths
from research.models.config import TransformerConfig

init_normal = nn.initializers.normal(stddev=0.02)


def partitioned(init, names):
    """An initializer whose parameter carries logical axis `names`."""
    return nn.with_logical_partitioning(init, names)


def constrain(x, names):
    """Hints activation sharding by logical axis names (a no-op outside a mesh)."""
    return nn.with_logical_constraint(x, names)


class LayerNorm(nn.Module):
    """LayerNorm with logically named parameters (epsilon: config.layer_norm_epsilon; BERT's is 1e-12)."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x):
        c = self.config
        return nn.LayerNorm(
            epsilon=c.layer_norm_epsilon,
            dtype=c.dtype,
            param_dtype=c.param_dtype,
            scale_init=partitioned(nn.initializers.ones, ('embed',)),
            bias_init=partitioned(nn.initializers.zeros, ('embed',)),
        )(x)


class Embed(nn.Module):
    """Token embedding table [V, D] (tied models reuse `embedding` as the output projection)."""

    config: TransformerConfig

    def setup(self):
        c = self.config
        self.embedding = self.param(
            'embedding', partitioned(init_normal, ('vocab', 'embed')), (c.vocab_size, c.d_model), c.param_dtype
        )

    def __call__(self, ids):
        return jnp.take(self.embedding, ids, axis=0).astype(self.config.dtype)


def rotary(x, positions, base: float = 10_000.0):
    """Rotary position embedding of x [B, T, H, K] at integer positions [B, T]."""
    half = x.shape[-1] // 2
    freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angle = positions[..., None].astype(jnp.float32) * freq  # [B, T, K/2]
    sin, cos = jnp.sin(angle)[:, :, None, :], jnp.cos(angle)[:, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with optional causal/padding masks and a KV cache.

    `mask` (bool, True = may attend) broadcasts to [B, 1, T, S]; a key-padding mask is
    `input_mask[:, None, None, :]`. It is combined with the causal (or cache) mask.

    In decode mode (config.decode) the module keeps `cached_key`/`cached_value` [B, H, S_max, K]
    in the 'cache' collection; `decode_index` is the position the current tokens are written at.
    Rotary positions when config.positions == 'rotary'.
    """

    config: TransformerConfig
    causal: bool = True

    @nn.compact
    def __call__(self, x, positions, *, train: bool = False, decode_index=None, mask=None):
        c = self.config
        d = x.shape[-1]
        k_dim = d // c.num_heads

        def param(name, shape, names, init=init_normal):
            return self.param(name, partitioned(init, names), shape, c.param_dtype).astype(c.dtype)

        # One fused projection for query, key and value (one matmul, one parameter).
        w = param('qkv', (d, 3, c.num_heads, k_dim), ('embed', None, 'heads', 'kv'))
        b = param('qkv_bias', (3, c.num_heads, k_dim), (None, 'heads', 'kv'), nn.initializers.zeros)
        qkv = jnp.einsum('btd,dnhk->btnhk', x, w) + b  # in the kernel's order: no transposed copy of it
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if c.positions == 'rotary':
            q, k = rotary(q, positions), rotary(k, positions)
        t = x.shape[1]
        structural = None
        if c.decode:
            k, v, structural = self._update_cache(k, v, decode_index)
        elif self.causal:
            structural = jnp.tril(jnp.ones((t, t), dtype=bool))[None, None]
        if mask is None:
            mask = structural
        elif structural is not None:
            mask = jnp.logical_and(mask, structural)
        q = q * jnp.asarray(k_dim**-0.5, q.dtype)  # scaled on [B, T, H, K], not on the [B, H, T, S] logits
        kv = 'bhsk' if c.decode else 'bshk'  # the layout of k and v (caches: see _update_cache)
        if c.dtype in (jnp.bfloat16, jnp.float16) and not (c.decode or train and c.dropout > 0):
            # The fused kernel, in half precision only: config.attention picks XLA's or cuDNN's
            # flash attention (GPU only); in float32, on CPU, the einsums below were as fast
            # (benchmarks/, docs/design.md).
            if c.attention == 'cudnn' and structural is not None and mask is structural:  # causal only: cuDNN's mask
                out = jax.nn.dot_product_attention(q, k, v, scale=1.0, is_causal=True, implementation='cudnn')
            else:
                out = jax.nn.dot_product_attention(q, k, v, mask=mask, scale=1.0, implementation=c.attention)
        else:
            logits = jnp.einsum(f'bthk,{kv}->bhts', q, k, preferred_element_type=jnp.float32)
            if mask is not None:
                logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
            probs = jax.nn.softmax(logits, axis=-1).astype(c.dtype)
            probs = nn.Dropout(c.dropout)(probs, deterministic=not train)
            out = jnp.einsum(f'bhts,{kv}->bthk', probs, v)
        w = param('out', (c.num_heads, k_dim, d), ('heads', 'kv', 'embed'))
        return jnp.einsum('bthk,hkd->btd', out, w) + param('out_bias', (d,), ('embed',), nn.initializers.zeros)

    def _update_cache(self, k, v, index):
        """Writes k, v [B, T, H, K] at `index` into caches laid out [B, H, S_max, K] (what the
        attention einsums read: a [B, S, H, K] cache was transposed whole at every step);
        returns the caches and their mask."""
        k, v = k.swapaxes(1, 2), v.swapaxes(1, 2)
        cached_k = self.variable('cache', 'cached_key', jnp.zeros, k.shape, k.dtype)
        cached_v = self.variable('cache', 'cached_value', jnp.zeros, v.shape, v.dtype)
        if self.is_initializing():  # init sees the full [B, S_max] shape: just allocate
            return k, v, None
        cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k, (0, 0, index, 0))
        cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v, (0, 0, index, 0))
        s_max, t = cached_k.value.shape[2], k.shape[2]
        query_pos = index + jnp.arange(t)[:, None]
        mask = (jnp.arange(s_max)[None, :] <= query_pos)[None, None]  # [1, 1, T, S_max]
        return cached_k.value, cached_v.value, mask


ACTIVATIONS = {
    'gelu': lambda h: nn.gelu(h, approximate=True),  # tanh approximation (GPT-2)
    'gelu_exact': lambda h: nn.gelu(h, approximate=False),  # erf GELU (BERT, MiniLM)
}


class Mlp(nn.Module):
    """Position-wise feed-forward: D -> F (config.activation) -> D; see ACTIVATIONS."""

    config: TransformerConfig

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        c = self.config
        d = x.shape[-1]
        h = nn.Dense(
            c.mlp_dim,
            dtype=c.dtype,
            param_dtype=c.param_dtype,
            name='wi',
            kernel_init=partitioned(init_normal, ('embed', 'mlp')),
            bias_init=partitioned(nn.initializers.zeros, ('mlp',)),
        )(x)
        if c.activation not in ACTIVATIONS:
            raise ValueError(f'unknown activation {c.activation!r}; one of {sorted(ACTIVATIONS)}')
        h = ACTIVATIONS[c.activation](h)
        h = constrain(h, ('batch', 'length', 'mlp'))
        h = nn.Dropout(c.dropout)(h, deterministic=not train)
        return nn.Dense(
            d,
            dtype=c.dtype,
            param_dtype=c.param_dtype,
            name='wo',
            kernel_init=partitioned(init_normal, ('mlp', 'embed')),
            bias_init=partitioned(nn.initializers.zeros, ('embed',)),
        )(h)


class Block(nn.Module):
    """One transformer layer.

    config.pre_norm (GPT, modern encoder): x + attn(ln1(x)), then x + mlp(ln2(x)).
    Otherwise (original BERT, post-LN): ln1(x + attn(x)), then ln2(x + mlp(x)).
    Called as every stack layer is (see `stack`): x, train, then the per-layer arguments;
    `mask` is the attention mask (see Attention).
    """

    config: TransformerConfig
    causal: bool = True

    @nn.compact
    def __call__(self, x, train: bool = False, positions=None, decode_index=None, mask=None):
        c = self.config
        drop = lambda y: nn.Dropout(c.dropout)(y, deterministic=not train)
        attn = Attention(c, self.causal, name='attn')
        mlp = Mlp(c, name='mlp')
        ln1 = LayerNorm(c, name='ln1')
        ln2 = LayerNorm(c, name='ln2')
        attend = lambda y: attn(y, positions, train=train, decode_index=decode_index, mask=mask)
        if c.pre_norm:
            x = x + drop(attend(ln1(x)))
            x = x + drop(mlp(ln2(x), train=train))
        else:
            x = ln1(x + drop(attend(x)))
            x = ln2(x + drop(mlp(x, train=train)))
        return constrain(x, ('batch', 'length', 'embed'))


REMAT_POLICIES = {  # config.model.remat: what the backward pass keeps of each block's forward
    'none': None,  # everything (no rematerialisation)
    'full': jax.checkpoint_policies.nothing_saveable,  # only the block's input: recompute the rest
    'dots_saveable': jax.checkpoint_policies.dots_saveable,  # matmul outputs; recompute the cheap ops
}


class _ScanBody(nn.Module):
    """One layer as nn.scan's body: the residual stream is the carry, the rest is broadcast."""

    block: Any  # the layer's module class
    config: TransformerConfig
    attrs: tuple  # the layer's other attributes, as (name, value) pairs
    layer: str  # the layer's name in the body

    @nn.compact
    def __call__(self, x, train, *args):
        return self.block(self.config, **dict(self.attrs), name=self.layer)(x, train, *args), None


def stack(block, config: TransformerConfig, *, name: str = 'block', **attrs):
    """config.num_layers layers `block(config, **attrs)` (Block, or e.g. seq2seq's DecoderBlock)
    as submodules of the module being set up or called (use it in `setup` or a compact method).

    Unrolled, they are NAME_0 … NAME_{L-1}; with config.scan_layers, one layer body is scanned
    over the layers (params NAMEs/NAME with a leading 'layers' axis: one compiled body, so
    compile time and program size stay flat in depth; KV caches are stacked the same way).
    config.remat names a REMAT_POLICIES entry. Returns apply(x, train, *args) -> x, which calls
    every layer as layer(x, train, *args): the same args for each (broadcast through the scan),
    `train` static. scan_params / unscan_params convert between the layouts.
    """
    policy = REMAT_POLICIES[config.remat]
    if config.scan_layers:
        body = _ScanBody
        if config.remat != 'none':
            body = nn.remat(_ScanBody, policy=policy, prevent_cse=False, static_argnums=(2,))
        scanned = nn.scan(
            body,
            variable_axes={'params': 0, 'cache': 0},
            split_rngs={'params': True, 'dropout': True},
            in_axes=nn.broadcast,
            length=config.num_layers,
            metadata_params={nn.PARTITION_NAME: 'layers'},
        )
        layers = scanned(block, config, tuple(sorted(attrs.items())), name, name=paths.scanned_key(name))
        return lambda x, train, *args: layers(x, train, *args)[0]
    cls = block if config.remat == 'none' else nn.remat(block, static_argnums=(2,), policy=policy)
    layers = [cls(config, **attrs, name=paths.layer_key(i, name)) for i in range(config.num_layers)]

    def apply(x, train, *args):
        for layer in layers:
            x = layer(x, train, *args)
        return x

    return apply


def scan_params(params):
    """Unrolled params (NAME_0 … NAME_{L-1} for a paths.STACKS name, wherever they are in the
    tree) -> the scanned layout (NAMEs/NAME, the layers stacked on a leading axis). Already
    scanned: unchanged."""
    if not isinstance(params, dict):
        return params
    out = {k: scan_params(v) for k, v in params.items()}
    for stack_name in paths.STACKS:
        names = [paths.layer_key(i, stack_name) for i in range(len(params))]
        names = [n for n in names if n in params]
        if names:
            stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[params[n] for n in names])
            out = {k: v for k, v in out.items() if k not in names}
            out[paths.scanned_key(stack_name)] = {stack_name: stacked}
    return out


def unscan_params(params):
    """The inverse of scan_params. Already unrolled: unchanged."""
    if not isinstance(params, dict):
        return params
    out = {}
    for k, v in params.items():
        stack_name = k[:-1]
        if stack_name in paths.STACKS and k == paths.scanned_key(stack_name):
            stacked = v[stack_name]
            n = len(jax.tree.leaves(stacked)[0])
            out.update({paths.layer_key(i, stack_name): jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(n)})
        else:
            out[k] = unscan_params(v)
    return out

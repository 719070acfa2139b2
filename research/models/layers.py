"""Transformer building blocks shared by every model family.

Shapes: B batch, T query length, S key length, D model dim, H heads, K head dim,
F MLP dim, V vocab. Parameters carry logical axis names; softmax runs in float32.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
init_normal = nn.initializers.normal(stddev=0.02)


def partitioned(init, names):
    """An initializer whose parameter carries logical axis `names`."""
    return nn.with_logical_partitioning(init, names)


def constrain(x, names):
    """Hints activation sharding by logical axis names (a no-op outside a mesh)."""
    return nn.with_logical_constraint(x, names)


class LayerNorm(nn.Module):
    """LayerNorm with logically named parameters (BERT checkpoints use epsilon=1e-12)."""

    epsilon: float = 1e-6
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return nn.LayerNorm(
            epsilon=self.epsilon,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            scale_init=partitioned(nn.initializers.ones, ('embed',)),
            bias_init=partitioned(nn.initializers.zeros, ('embed',)),
        )(x)


class Embed(nn.Module):
    """Token embedding table [V, D] (tied models reuse `embedding` as the output projection)."""

    vocab_size: int
    features: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self):
        self.embedding = self.param(
            'embedding',
            partitioned(init_normal, ('vocab', 'embed')),
            (self.vocab_size, self.features),
            self.param_dtype,
        )

    def __call__(self, ids):
        return jnp.take(self.embedding, ids, axis=0).astype(self.dtype)


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

    In decode mode the module keeps `cached_key`/`cached_value` [B, S_max, H, K] in the
    'cache' collection; `decode_index` is the position the current tokens are written at.
    """

    num_heads: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    dropout: float = 0.0
    causal: bool = True
    use_rotary: bool = False
    decode: bool = False

    @nn.compact
    def __call__(self, x, positions, *, train: bool = False, decode_index=None, mask=None):
        d = x.shape[-1]
        k_dim = d // self.num_heads

        def param(name, shape, names, init=init_normal):
            return self.param(name, partitioned(init, names), shape, self.param_dtype).astype(self.dtype)

        # One fused projection for query, key and value (one matmul, one parameter).
        w = param('qkv', (d, 3, self.num_heads, k_dim), ('embed', None, 'heads', 'kv'))
        b = param('qkv_bias', (3, self.num_heads, k_dim), (None, 'heads', 'kv'), nn.initializers.zeros)
        qkv = jnp.einsum('btd,dnhk->btnhk', x, w) + b  # in the kernel's order: no transposed copy of it
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        if self.use_rotary:
            q, k = rotary(q, positions), rotary(k, positions)
        t = x.shape[1]
        structural = None
        if self.decode:
            k, v, structural = self._update_cache(k, v, decode_index)
        elif self.causal:
            structural = jnp.tril(jnp.ones((t, t), dtype=bool))[None, None]
        if mask is None:
            mask = structural
        elif structural is not None:
            mask = jnp.logical_and(mask, structural)
        q = q * jnp.asarray(k_dim**-0.5, q.dtype)  # scaled on [B, T, H, K], not on the [B, H, T, S] logits
        kv = 'bhsk' if self.decode else 'bshk'  # the layout of k and v (caches: see _update_cache)
        if self.dtype in (jnp.bfloat16, jnp.float16) and not (self.decode or train and self.dropout > 0):
            # cuDNN flash attention on GPUs (XLA elsewhere); in float32, on CPU, the einsums
            # below were as fast (benchmarks/, docs/design.md)
            out = jax.nn.dot_product_attention(q, k, v, mask=mask, scale=1.0)
        else:
            logits = jnp.einsum(f'bthk,{kv}->bhts', q, k, preferred_element_type=jnp.float32)
            if mask is not None:
                logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
            probs = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
            probs = nn.Dropout(self.dropout)(probs, deterministic=not train)
            out = jnp.einsum(f'bhts,{kv}->bthk', probs, v)
        w = param('out', (self.num_heads, k_dim, d), ('heads', 'kv', 'embed'))
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
    """Position-wise feed-forward: D -> F (activation) -> D; see ACTIVATIONS."""

    mlp_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    dropout: float = 0.0
    activation: str = 'gelu'

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        d = x.shape[-1]
        h = nn.Dense(
            self.mlp_dim,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name='wi',
            kernel_init=partitioned(init_normal, ('embed', 'mlp')),
            bias_init=partitioned(nn.initializers.zeros, ('mlp',)),
        )(x)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f'unknown activation {self.activation!r}; one of {sorted(ACTIVATIONS)}')
        h = ACTIVATIONS[self.activation](h)
        h = constrain(h, ('batch', 'length', 'mlp'))
        h = nn.Dropout(self.dropout)(h, deterministic=not train)
        return nn.Dense(
            d,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name='wo',
            kernel_init=partitioned(init_normal, ('mlp', 'embed')),
            bias_init=partitioned(nn.initializers.zeros, ('embed',)),
        )(h)


class Block(nn.Module):
    """One transformer layer.

    pre_norm=True (default): x + attn(ln1(x)), then x + mlp(ln2(x)).
    pre_norm=False (original BERT, post-LN): ln1(x + attn(x)), then ln2(x + mlp(x)).
    `mask` is the attention mask (see Attention); it is the last positional argument so
    that `nn.remat(Block, static_argnums=(3,))` keeps `train` static.
    """

    num_heads: int
    mlp_dim: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    dropout: float = 0.0
    causal: bool = True
    use_rotary: bool = False
    decode: bool = False
    pre_norm: bool = True
    layer_norm_epsilon: float = 1e-6
    activation: str = 'gelu'

    @nn.compact
    def __call__(self, x, positions, train: bool = False, decode_index=None, mask=None):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        drop = lambda y: nn.Dropout(self.dropout)(y, deterministic=not train)
        attn = Attention(
            self.num_heads,
            dropout=self.dropout,
            causal=self.causal,
            use_rotary=self.use_rotary,
            decode=self.decode,
            name='attn',
            **kw,
        )
        mlp = Mlp(self.mlp_dim, dropout=self.dropout, activation=self.activation, name='mlp', **kw)
        ln1 = LayerNorm(self.layer_norm_epsilon, name='ln1', **kw)
        ln2 = LayerNorm(self.layer_norm_epsilon, name='ln2', **kw)
        attend = lambda y: attn(y, positions, train=train, decode_index=decode_index, mask=mask)
        if self.pre_norm:
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
    """One Block as nn.scan's body: the residual stream is the carry, the rest is broadcast."""

    block: dict  # Block's attributes
    train: bool

    @nn.compact
    def __call__(self, x, positions, decode_index, mask):
        return Block(**self.block, name='block')(x, positions, self.train, decode_index, mask), None


def stack(
    x, positions, train: bool, decode_index=None, mask=None, *, num_layers: int, block: dict, scan: bool, remat: str
):
    """`num_layers` Blocks with attributes `block` applied to x. Call it inside a compact method:
    the Blocks become the caller's submodules, unrolled (params block_0 … block_{L-1}) or, with
    `scan`, one Block body scanned over the layers (params 'blocks' with a leading 'layers'
    axis: one compiled body, so compile time and program size stay flat in depth). `remat`
    names a REMAT_POLICIES entry. scan_params / unscan_params convert between the layouts."""
    policy = REMAT_POLICIES[remat]
    if scan:
        body = _ScanBody if remat == 'none' else nn.remat(_ScanBody, policy=policy, prevent_cse=False)
        scanned = nn.scan(
            body,
            variable_axes={'params': 0, 'cache': 0},
            split_rngs={'params': True, 'dropout': True},
            in_axes=(nn.broadcast, nn.broadcast, nn.broadcast),
            length=num_layers,
            metadata_params={nn.PARTITION_NAME: 'layers'},
        )
        return scanned(block, train, name='blocks')(x, positions, decode_index, mask)[0]
    cls = Block if remat == 'none' else nn.remat(Block, static_argnums=(3,), policy=policy)
    for i in range(num_layers):
        x = cls(**block, name=f'block_{i}')(x, positions, train, decode_index, mask)
    return x


def scan_params(params):
    """Unrolled params (block_0 … block_{L-1}, wherever they are in the tree) -> the scanned
    layout ('blocks'/'block', the layers stacked on a leading axis). Already scanned: unchanged."""
    if not isinstance(params, dict):
        return params
    if 'block_0' in params:
        names = [f'block_{i}' for i in range(len(params))]
        blocks = [params[n] for n in names if n in params]
        rest = {k: v for k, v in params.items() if k not in names}
        return {**rest, 'blocks': {'block': jax.tree.map(lambda *xs: jnp.stack(xs), *blocks)}}
    return {k: scan_params(v) for k, v in params.items()}


def unscan_params(params):
    """The inverse of scan_params. Already unrolled: unchanged."""
    if not isinstance(params, dict):
        return params
    if 'blocks' in params:
        stacked = params['blocks']['block']
        n = len(jax.tree.leaves(stacked)[0])
        rest = {k: v for k, v in params.items() if k != 'blocks'}
        return {**rest, **{f'block_{i}': jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(n)}}
    return {k: unscan_params(v) for k, v in params.items()}

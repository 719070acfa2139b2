"""The reference side: Hugging Face Flax GPT-2 / BERT at the same shapes (`pip install -e '.[bench]'`).

The train step is what a user of those models writes: logits from the model, the same
weighted cross-entropy and the same optimizer as ours (research.optim with the base
config: AdamW + global-norm clipping + schedule), jitted with the state donated.
Decoding is `model.generate` (greedy, KV cache) jitted as a whole.
"""

import jax
import jax.numpy as jnp
import optax

from benchmarks import common
from research import config as config_lib
from research.optim import make_optimizer


def _gpt2(shape: str, positions: int | None = None):
    from transformers import FlaxGPT2LMHeadModel, GPT2Config

    s = common.dims(shape)
    cfg = GPT2Config(
        vocab_size=s['vocab'],
        n_positions=positions or s['seq'],
        n_embd=s['d'],
        n_layer=s['layers'],
        n_head=s['heads'],
        n_inner=s['mlp'],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=s['vocab'],  # an id never generated: every call decodes all new tokens
        pad_token_id=0,
    )
    return FlaxGPT2LMHeadModel(cfg, input_shape=(1, 1), seed=0)


def _bert(shape: str):
    from transformers import BertConfig, FlaxBertForMaskedLM

    s = common.dims(shape)
    cfg = BertConfig(
        vocab_size=s['vocab'],
        hidden_size=s['d'],
        num_hidden_layers=s['layers'],
        num_attention_heads=s['heads'],
        intermediate_size=s['mlp'],
        max_position_embeddings=s['seq'],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return FlaxBertForMaskedLM(cfg, input_shape=(1, 1), seed=0)


def train(kind: str, shape: str, warmup: int, steps: int) -> dict:
    s = common.dims(shape)
    model = _gpt2(shape) if kind == 'decoder' else _bert(shape)
    c = config_lib.base_config()
    tx, _ = make_optimizer(c.optim, c.total_steps)
    ids, predict = common.tokens(shape)
    if kind == 'decoder':
        inputs, targets, weights = ids[:, :-1], ids[:, 1:], jnp.ones_like(predict)
    else:
        inputs, targets, weights = jnp.where(predict > 0, 4, ids[:, 1:]), ids[:, 1:], predict
    inputs, targets, weights = jnp.asarray(inputs), jnp.asarray(targets), jnp.asarray(weights)

    def loss_fn(params):
        logits = model(inputs, params=params, train=False).logits
        xent = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
        return jnp.sum(xent * weights) / jnp.sum(weights)

    def step(state):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    state = (model.params, tx.init(model.params))
    jitted = jax.jit(step, donate_argnums=0)

    def step_fn(compiled, st):
        st, loss = compiled(st)
        jax.block_until_ready(loss)
        return st

    out = common.time_train(lambda: jitted.lower(state).compile(), step_fn, state, warmup, steps)
    n = sum(x.size for x in jax.tree.leaves(model.params))
    tables = s['seq'] * s['d'] + (0 if kind == 'decoder' else 2 * s['d'])  # positions (+ token types)
    return dict(out, params=n, flops_per_token=common.flops_per_token(n - tables, s['layers'], s['seq'], s['d']))


def decode(batch: int, warmup: int, calls: int) -> dict:
    s = common.dims(common.DECODE_SHAPE)
    model = _gpt2(common.DECODE_SHAPE, positions=s['seq'])
    prompts = jnp.asarray(common.prompts(batch, s['vocab']))
    generate = jax.jit(
        lambda p, ids: model.generate(ids, params=p, max_new_tokens=common.NEW_TOKENS, do_sample=False).sequences
    )
    run = lambda: jax.block_until_ready(generate(model.params, prompts))
    return dict(common.time_calls(run, warmup, calls), params=sum(x.size for x in jax.tree.leaves(model.params)))

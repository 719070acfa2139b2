"""Which parameter is which, from its path: layer i's, a scanned stack's, an embedding's.

Layer stacks (layers.stack) are named NAME_0 … NAME_{L-1} when unrolled and NAMEs/NAME
(the layers stacked on a leading axis) when scanned, for NAME in STACKS: 'block' in the
decoder and encoder, 'encoder' and 'decoder' in the encoder-decoder. Everything that walks
parameter paths (layer-wise lr decay, weight decay's mask, scan_params, checkpoint
converters) asks here, so both layouts are handled in one place.
"""

import re

import flax.linen as nn
import jax

STACKS = ('block', 'encoder', 'decoder')
# token, position and segment tables, and the LayerNorm applied right after them (BERT)
EMBEDDINGS = ('embed', 'target_embed', 'pos_embedding', 'type_embedding', 'source_pos', 'target_pos', 'embed_ln')

_LAYER = re.compile(rf'^({"|".join(STACKS)})_(\d+)$')
_SCANNED = {name + 's' for name in STACKS}


def layer_key(i: int, stack: str = 'block') -> str:
    """The name of unrolled layer i of a stack ('block_3')."""
    return f'{stack}_{i}'


def scanned_key(stack: str = 'block') -> str:
    """The name of a scanned stack ('blocks'; its one body is 'blocks/block')."""
    return stack + 's'


def path_string(path) -> str:
    """A jax key path -> 'a/b/c'."""
    return '/'.join(str(getattr(k, 'key', k)) for k in path)


def role(path: str) -> tuple[str, int | None]:
    """What the parameter at 'a/b/c' is: ('layer', i) in unrolled layer i; ('layers', None) in a
    scanned stack (its leading axis is the layer); ('embedding', None); else ('other', None)."""
    names = path.split('/')
    for name in names:
        layer = _LAYER.match(name)
        if layer:
            return 'layer', int(layer.group(2))
        if name in _SCANNED:
            return 'layers', None
    if any(name in EMBEDDINGS for name in names):
        return 'embedding', None
    return 'other', None


def vocab_size(params) -> int:
    """Rows of the model's token table ('embed/embedding', at any depth, e.g. under 'encoder';
    params boxed with their logical axis names or not)."""
    for path, x in jax.tree_util.tree_leaves_with_path(nn.unbox(params)):
        if path_string(path).split('/')[-2:] == ['embed', 'embedding']:
            return x.shape[0]
    raise ValueError('no token table (embed/embedding) in these params')

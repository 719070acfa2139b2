"""The memory planner: per-device bytes from abstract shapes equal the real sharded arrays'."""

import jax
import pytest
from conftest import tiny_lm_config

from research import sharding, tasks
from research.tools import plan
from research.train import init_state


def real_device_bytes(tree) -> int:
    """The most bytes any one device holds of a tree of real sharded arrays."""
    per_device = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            per_device[shard.device] = per_device.get(shard.device, 0) + shard.data.nbytes
    return max(per_device.values())


@pytest.mark.parametrize('task,mesh', [('lm', dict(data=2, fsdp=2, tensor=2)), ('mlm', dict(data=1, fsdp=4, tensor=2))])
def test_plan_matches_the_real_sharded_state_on_8_devices(bbc, task, mesh):
    config = tiny_lm_config(
        bbc, task=task, model__arch='gpt' if task == 'lm' else 'bert', model__d_model=64, model__num_layers=2
    )
    config.mesh.update(mesh)
    vocab_size = 2000
    planned = plan.plan(config, mesh, vocab_size)
    real_mesh = sharding.make_mesh(config.mesh)
    state = init_state(tasks.get(config), config, vocab_size, real_mesh)[4](jax.random.key(0))
    assert planned['params'] == real_device_bytes(state.params)
    assert planned['optimizer'] == real_device_bytes(state.opt_state)
    assert planned['num_params'] == sum(x.size for x in jax.tree.leaves(state.params))
    assert planned['params'] < 4 * planned['num_params'] / 2  # really sharded (8 devices, float32)
    assert planned['activations_remat'] < planned['activations']


def test_cli_says_whether_it_fits(capsys):
    args = ['--config', 'experiments/lm1b.py:size=base', '--mesh', 'data=4,fsdp=4,tensor=2', '--vocab_size', '32000']
    assert plan.main(args + ['--device_memory', '16GB']) == 0
    out = capsys.readouterr().out
    assert '109,632,000 parameters' in out and 'device memory 14.901 GiB: fits' in out
    assert "embed/embedding                  1 x (32000, 768)       ('tensor', 'fsdp')           -> (16000, 192)" in out
    assert plan.main(args + ['--device_memory', '600MiB']) == 0
    assert "does NOT fit; with remat (config.model.remat='full'): fits" in capsys.readouterr().out


@pytest.mark.parametrize(
    'args,message',
    [
        (['--mesh', 'data=4,model=2'], 'expected AXIS=N'),
        (['--mesh', 'data=3'], 'not divisible'),
        (['--mesh', 'data=2', '--device_memory', 'lots'], 'expected a number with a unit'),
    ],
)
def test_bad_input_is_one_error_line(capsys, args, message):
    assert plan.main(['--config', 'experiments/lm1b.py:size=base', '--vocab_size', '100', *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count('\n') == 1

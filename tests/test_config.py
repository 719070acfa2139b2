"""Config loading: typed overrides, and one clear line for every bad config."""

import pytest

from research import config as config_lib
from research import main as main_lib

QUICKSTART = 'experiments/quickstart.py'


def test_parse_arg_types():
    a = config_lib.parse_arg('size=small,runlocal', size='tiny', runlocal=False, n=3)
    assert (a.size, a.runlocal, a.n) == ('small', True, 3)
    with pytest.raises(config_lib.ConfigError, match='unknown config argument'):
        config_lib.parse_arg('bogus=1', size='tiny')


def test_overrides_are_typed():
    c = config_lib.load_config(QUICKSTART + ':size=tiny', ['total_steps=7', 'optim.lr=1', 'model.positions=rotary'])
    assert c.total_steps == 7 and c.optim.lr == 1.0 and isinstance(c.optim.lr, float)
    assert c.model.positions == 'rotary'


@pytest.mark.parametrize(
    'override,needle',
    [
        ('--config.optim.lrr=1e-3', "unknown config key 'optim.lrr'"),
        ('--config.total_steps=abc', 'config.total_steps'),
        ('--config.total_steps=1.5', 'config.total_steps must be int'),
        ('--config.batch_size=12', 'not divisible by the 8 data-parallel shards'),
        ('--config.data.vocab_path=/nonexistent/v.txt', 'research.tools.build_vocab'),
        ('--config.mesh.tensor=3', 'config.mesh'),
        ('--config.model.positions=alibi', "config.model.positions='alibi'"),
        ('--config.loss.label_smoothing=1.0', 'config.loss.label_smoothing=1.0 must be in [0, 1)'),
    ],
)
def test_bad_config_fails_fast_with_one_line(tmp_path, capsys, override, needle):
    args = ['--config', QUICKSTART, '--workdir', str(tmp_path / 'w'), override]
    if 'vocab_path' not in override:  # any existing file passes the vocab check
        args.append('--config.data.vocab_path=' + __file__)
    code = main_lib.main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith('error: ') and needle in err, err
    assert not (tmp_path / 'w').exists(), 'nothing is written before the config is valid'


def test_missing_config_file(tmp_path, capsys):
    assert main_lib.main(['--config', 'experiments/nope.py', '--workdir', str(tmp_path)]) == 2
    assert 'not found' in capsys.readouterr().err


def test_experiment_cannot_add_unknown_keys():
    c = config_lib.base_config()
    c.model.hiden = 3
    with pytest.raises(config_lib.ConfigError, match="unknown config key 'model.hiden'"):
        config_lib.check_fields(c)

"""The offline tools as a user meets them: a builder of their own that raises is one line."""

import pytest

from research.tools import prepare_data

BUILDER = """import tensorflow_datasets as tfds


class {name}(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
        features = tfds.features.FeaturesDict({{'text': tfds.features.Text()}})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {{'train': self._generate_examples()}}

    def _generate_examples(self):
        for i, word in enumerate(['alpha', 'beta', 'gamma']):
            yield {key}, {{'text': word}}
"""
YIELD_LINE = 16


def write_builder(tmp_path, name, key='word'):
    path = tmp_path / f'{name.lower()}.py'
    path.write_text(BUILDER.format(name=name, key=key))
    return str(path)


def prepare(builder, tmp_path, capsys):
    """prepare_data's exit status and its `error:` lines (TFDS logs and progress bars aside)."""
    code = prepare_data.main(['--builder', builder, '--data_dir', str(tmp_path / 'tfds')])
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err
    lines = [line.split('\r')[-1] for line in err.splitlines()]  # a progress bar's last state before '\r'
    return code, [line for line in lines if line.startswith('error: ')]


def test_builder_prepares(tmp_path, capsys):
    assert prepare_data.main(['--builder', write_builder(tmp_path, 'TinyWords'), '--data_dir', str(tmp_path)]) == 0
    assert 'tiny_words prepared in ' in capsys.readouterr().out


@pytest.mark.parametrize(
    'name,key,message',
    [
        ('TinyRaises', 'word.lower(1)', f':{YIELD_LINE}: TypeError: str.lower() takes no arguments (1 given)'),
        ('TinyBadSyntax', 'word word', f':{YIELD_LINE}: invalid syntax'),
    ],
)
def test_builder_raising_is_one_line_naming_its_line(tmp_path, capsys, name, key, message):
    builder = write_builder(tmp_path, name, key)
    code, errors = prepare(builder, tmp_path, capsys)
    assert code == 2 and errors == [f'error: {builder}{message}; fix the builder'], errors


def test_duplicate_keys_name_the_builder(tmp_path, capsys):
    builder = write_builder(tmp_path, 'TinyDuplicates', key='0')  # TFDS finds these, not the builder's code
    code, errors = prepare(builder, tmp_path, capsys)
    assert code == 2 and errors == [
        f"error: {builder}: _generate_examples yielded two examples with the same key in split 'train' "
        '(both logged above); every key must be unique; fix the builder'
    ], errors

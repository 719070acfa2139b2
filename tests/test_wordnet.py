"""The `wordnet_wic` builder: WordNet file parsing, target finding, MFS, lemma-disjoint splits."""

import collections
import os

import pytest

from research.data import sources, wordnet

SEDATE = (
    '00022316 29 v 05 sedate 0 calm 0 tranquilize 0 tranquillize 0 tranquillise 0 001 '
    '@ 00019448 v 0000 01 + 09 00 | cause to be calm or quiet as by administering a sedative '
    'to; "The patient must be sedated before the operation"  '
)


def write_lexicon(root, synsets, exceptions=(), tag_counts=()):
    """A miniature WordNet in wndb(5WN) format. synsets: (pos, lexfile, lemmas, examples)."""
    os.makedirs(root, exist_ok=True)
    data, index = collections.defaultdict(list), collections.defaultdict(lambda: collections.defaultdict(list))
    for k, (pos, lexfile, lemmas, examples) in enumerate(synsets):
        offset = f'{k + 1:08d}'
        words = ' '.join(f'{w.replace(" ", "_")} 0' for w in lemmas)
        gloss = '; '.join(['a gloss'] + [f'"{e}"' for e in examples])
        data[pos].append(f'{offset} {lexfile:02d} {wordnet.LETTER[pos]} {len(lemmas):02x} {words} 000 | {gloss}')
        for w in lemmas:
            index[pos][w.replace(' ', '_')].append(offset)
    for pos in wordnet.FILES:
        with open(os.path.join(root, f'data.{pos}'), 'w') as f:
            f.write('  1 This software and database is a license header line.\n')
            f.writelines(line + '  \n' for line in data[pos])
        with open(os.path.join(root, f'index.{pos}'), 'w') as f:
            for lemma, offsets in sorted(index[pos].items()):
                f.write(f'{lemma} {wordnet.LETTER[pos]} {len(offsets)} 0 {len(offsets)} 0 {" ".join(offsets)}  \n')
        with open(os.path.join(root, f'{pos}.exc'), 'w') as f:
            f.writelines(f'{form} {base}\n' for p, form, base in exceptions if p == pos)
    with open(os.path.join(root, 'cntlist.rev'), 'w') as f:
        f.writelines(f'{key} 1 {count}\n' for key, count in tag_counts)
    return str(root)


def test_parse_data_line():
    s = wordnet.parse_data_line(SEDATE, 'verb')
    assert (s.offset, s.lexfile, s.pos) == ('00022316', 29, 'verb')
    assert s.lemmas == ('sedate', 'calm', 'tranquilize', 'tranquillize', 'tranquillise')
    assert s.examples == ('The patient must be sedated before the operation',)
    assert wordnet.SUPERSENSES[s.lexfile] == 'verb.body' and len(wordnet.SUPERSENSES) == 45


def test_targets_inflections_multiwords_and_most_frequent_sense(tmp_path):
    root = write_lexicon(
        tmp_path,
        [
            ('verb', 29, ('sedate', 'calm'), ('The patient must be sedated before the operation',)),
            ('verb', 38, ('take off', 'depart'), ('the plane took off late', 'she departs tomorrow')),
            ('noun', 18, ('child', 'kid'), ('the children played',)),
            ('noun', 13, ('calm',), ()),
            ('noun', 26, ('calm',), ()),
            ('adj', 0, ('calm',), ('a calm sea', 'no match here')),
        ],
        exceptions=[('verb', 'took', 'take'), ('noun', 'children', 'child')],
        tag_counts=[('calm%3:00:00::', 2), ('calm%1:26:00::', 1)],
    )
    lex = wordnet.Lexicon(root)
    stats = collections.Counter()
    found = {key: ex for key, ex in lex.examples(stats)}
    assert stats == {'sentences': 6, 'no_target': 1}
    targets = {
        ex['lemma']: (ex['words'][ex['target'] : ex['target'] + ex['target_len']], ex['supersense'])
        for ex in found.values()
    }
    assert targets == {
        'sedate': (['sedated'], 29),
        'take off': (['took', 'off'], 38),
        'depart': (['departs'], 38),
        'child': (['children'], 18),
        'calm': (['calm'], 0),
    }
    # 'calm': adj.all has the largest tag count; without counts every lexfile has one sense,
    # so index order (noun before verb, adj; noun.food first among nouns) decides.
    assert lex.most_frequent_supersense('calm') == 0
    assert lex.most_frequent_supersense('sedate') == 29
    assert found[next(k for k, e in found.items() if e['lemma'] == 'calm')]['mfs_pos'] == 'adj'
    del lex.tag_counts['calm']
    assert lex.most_frequent_supersense('calm') == 13


def test_missing_wordnet_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install -y wordnet-base'):
        wordnet.Lexicon(str(tmp_path))


def test_builder_splits_by_lemma(tmp_path):
    synsets = [('noun', 5, (f'beast{i}',), (f'the beast{i} ate grass', f'a beast{i} ran')) for i in range(30)]
    root = write_lexicon(tmp_path / 'wn', synsets)
    data_dir = str(tmp_path / 'tfds')
    sources.prepare(lambda: wordnet.WordnetWic(data_dir=data_dir, wordnet_dir=root))
    lemmas = {}
    for split in ('train', 'validation', 'test'):
        rows = list(sources.load_split('wordnet_wic', split, data_dir))
        lemmas[split] = {r['lemma'].decode() for r in rows}
        assert all(wordnet.split_of(lemma) == split for lemma in lemmas[split])
        assert all(
            r['supersense'] == 5 and r['pos'] == 0 and r['words'][r['target']].decode() == r['lemma'].decode()
            for r in rows
        )
    assert sum(map(len, lemmas.values())) == 30 and lemmas['train']


@pytest.mark.skipif(not os.path.isdir(wordnet.WORDNET_DIR), reason=f'WordNet not installed: {wordnet.INSTALL}')
def test_real_wordnet_examples():
    lex = wordnet.Lexicon()
    stats = collections.Counter()
    examples = [ex for _, ex in lex.examples(stats)]
    assert stats['sentences'] > 48_000 and len(examples) > 0.97 * stats['sentences']
    assert {ex['supersense'] for ex in examples} == set(range(45))
    by_split = collections.defaultdict(set)
    for ex in examples:
        by_split[wordnet.split_of(ex['lemma'])].add(ex['lemma'])
    assert not by_split['train'] & by_split['test'] and not by_split['train'] & by_split['validation']
    sedate = next(ex for ex in examples if ex['synset'] == 'v00022316')
    assert (sedate['lemma'], sedate['words'][sedate['target']], wordnet.SUPERSENSES[sedate['supersense']]) == (
        'sedate',
        'sedated',
        'verb.body',
    )

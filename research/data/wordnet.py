"""Local TFDS builder `wordnet_wic`: WordNet 3.0 example sentences with the target word
marked, labelled with its supersense (lexicographer file) and part of speech.

Source: the Debian package `wordnet-base` (`apt-get install -y wordnet-base`, in `make
system-deps`), files `/usr/share/wordnet/{data,index}.{noun,verb,adj,adv}`, `*.exc` and
`cntlist.rev`. Each quoted example in a synset's gloss ("cause to be calm; "The patient
must be sedated"") becomes one example when one of the synset's words occurs in it, in
an inflected form found by WordNet's own rules (exception lists + suffix detachment, as
`morphy`); multiword lemmas ("perk up") match consecutive words. Examples where no synset
word is found are dropped (the builder logs how many).

Features:
  words:          the sentence split into words (letters/digits, with inner - and ').
  target, target_len: first word index and length (in words) of the target.
  lemma:          the synset word found ("sedate", "perk up").
  supersense:     ClassLabel, the synset's lexicographer file (45: adj.all ... adj.ppl).
  pos:            ClassLabel noun / verb / adj / adv (adjective satellites are adj).
  mfs_supersense, mfs_pos: the lemma's most frequent supersense in the lexicon (largest
                  SemCor tag count summed over its senses, then most senses, then the
                  first in noun/verb/adj/adv sense order) -- the classic context-free
                  most-frequent-sense baseline, stored per example so any run can score it.
  synset:         "<n|v|a|r><offset>", e.g. "v00022316".

Splits are by lemma (sha256 of the lemma: ~80/10/10), so no target lemma is in two
splits and a model must recognise supersenses of words it was never trained on.
"""

import collections
import dataclasses
import hashlib
import os
import re

import numpy as np
import tensorflow_datasets as tfds

WORDNET_DIR = '/usr/share/wordnet'
INSTALL = 'apt-get install -y wordnet-base'
FILES = ('noun', 'verb', 'adj', 'adv')
POS = FILES  # class names of the `pos` label
LETTER = {'noun': 'n', 'verb': 'v', 'adj': 'a', 'adv': 'r'}  # as in WordNet sense keys and synset ids
SUPERSENSES = (
    'adj.all',
    'adj.pert',
    'adv.all',
    'noun.Tops',
    'noun.act',
    'noun.animal',
    'noun.artifact',
    'noun.attribute',
    'noun.body',
    'noun.cognition',
    'noun.communication',
    'noun.event',
    'noun.feeling',
    'noun.food',
    'noun.group',
    'noun.location',
    'noun.motive',
    'noun.object',
    'noun.person',
    'noun.phenomenon',
    'noun.plant',
    'noun.possession',
    'noun.process',
    'noun.quantity',
    'noun.relation',
    'noun.shape',
    'noun.state',
    'noun.substance',
    'noun.time',
    'verb.body',
    'verb.change',
    'verb.cognition',
    'verb.communication',
    'verb.competition',
    'verb.consumption',
    'verb.contact',
    'verb.creation',
    'verb.emotion',
    'verb.motion',
    'verb.perception',
    'verb.possession',
    'verb.social',
    'verb.stative',
    'verb.weather',
    'adj.ppl',
)  # index = lexicographer file number (lexnames(5WN))
# morphy's suffix detachment rules per part of speech: (suffix, replacement).
RULES = {
    'noun': (
        ('s', ''),
        ('ses', 's'),
        ('xes', 'x'),
        ('zes', 'z'),
        ('ches', 'ch'),
        ('shes', 'sh'),
        ('men', 'man'),
        ('ies', 'y'),
    ),
    'verb': (('s', ''), ('ies', 'y'), ('es', 'e'), ('es', ''), ('ed', 'e'), ('ed', ''), ('ing', 'e'), ('ing', '')),
    'adj': (('er', ''), ('est', ''), ('er', 'e'), ('est', 'e')),
    'adv': (),
}
WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")


def words_of(text: str) -> list[str]:
    """Splits text into words (inner hyphens and apostrophes kept) and punctuation marks."""
    return WORD.findall(text)


def split_of(lemma: str) -> str:
    """'train' / 'validation' / 'test' for a lemma (stable across runs)."""
    bucket = int.from_bytes(hashlib.sha256(lemma.encode()).digest()[:8], 'big') % 10
    return 'train' if bucket < 8 else ('validation' if bucket == 8 else 'test')


@dataclasses.dataclass(frozen=True)
class Synset:
    pos: str  # one of FILES
    offset: str
    lexfile: int
    lemmas: tuple[str, ...]  # lowercase, words separated by spaces
    examples: tuple[str, ...]


def parse_data_line(line: str, pos: str) -> Synset:
    """One line of data.<pos> (wndb(5WN)) -> Synset; examples are the quoted gloss parts."""
    head, _, gloss = line.partition(' | ')
    fields = head.split()
    count = int(fields[3], 16)
    lemmas = tuple(re.sub(r'\(\w+\)$', '', w).replace('_', ' ').lower() for w in fields[4 : 4 + 2 * count : 2])
    return Synset(pos, fields[0], int(fields[1]), lemmas, tuple(re.findall(r'"([^"]+)"', gloss)))


class Lexicon:
    """The parts of WordNet the builder needs, read from `wordnet_dir`."""

    def __init__(self, wordnet_dir: str = WORDNET_DIR):
        if not os.path.isfile(os.path.join(wordnet_dir, 'data.noun')):
            raise FileNotFoundError(f'WordNet not found in {wordnet_dir}; run `{INSTALL}` (or make system-deps)')
        self.synsets, self.exceptions = [], {}
        self.senses = collections.defaultdict(list)  # lemma -> lexfiles of its synsets, index order
        for pos in FILES:
            by_offset = {}
            for line in _lines(wordnet_dir, f'data.{pos}'):
                s = parse_data_line(line, pos)
                self.synsets.append(s)
                by_offset[s.offset] = s.lexfile
            for line in _lines(wordnet_dir, f'index.{pos}'):
                f = line.split()
                self.senses[f[0].replace('_', ' ')].extend(by_offset[o] for o in f[-int(f[2]) :])
            self.exceptions[pos] = collections.defaultdict(set)
            for line in _lines(wordnet_dir, f'{pos}.exc'):
                form, *bases = line.split()
                self.exceptions[pos][form].update(b.replace('_', ' ') for b in bases)
        self.tag_counts = collections.defaultdict(collections.Counter)  # lemma -> lexfile -> count
        for line in _lines(wordnet_dir, 'cntlist.rev'):
            key, _, count = line.split()
            lemma, lexsense = key.split('%')
            self.tag_counts[lemma.replace('_', ' ')][int(lexsense.split(':')[1])] += int(count)

    def base_forms(self, word: str, pos: str) -> set[str]:
        """The word itself and its possible lemmas in `pos` (exception list, suffix rules)."""
        word = word.lower()
        forms = {word} | self.exceptions[pos].get(word, set())
        forms.update(word[: -len(suffix)] + rep for suffix, rep in RULES[pos] if word.endswith(suffix))
        return forms

    def most_frequent_supersense(self, lemma: str) -> int:
        """The lexfile with the largest tag count, then most senses, then first in index order."""
        lexfiles = self.senses[lemma]
        counts, senses = self.tag_counts[lemma], collections.Counter(lexfiles)
        return max(dict.fromkeys(lexfiles), key=lambda lf: (counts[lf], senses[lf]))

    def find_target(self, words: list[str], synset: Synset):
        """(start, length, lemma) of the earliest synset word in `words` (longest on ties)."""
        forms = [self.base_forms(w, synset.pos) for w in words]
        best = None
        for lemma in synset.lemmas:
            parts = lemma.split()
            for i in range(len(words) - len(parts) + 1):
                if all(p in forms[i + j] for j, p in enumerate(parts)):
                    if best is None or (i, -len(parts)) < (best[0], -best[1]):
                        best = (i, len(parts), lemma)
                    break
        return best

    def examples(self, stats: collections.Counter):
        """Yields (key, features) for every example sentence whose target is found."""
        for s in self.synsets:
            for k, text in enumerate(s.examples):
                stats['sentences'] += 1
                words = words_of(text)
                found = self.find_target(words, s)
                if found is None:
                    stats['no_target'] += 1
                    continue
                start, length, lemma = found
                mfs = self.most_frequent_supersense(lemma)
                synset = LETTER[s.pos] + s.offset
                yield (
                    f'{synset}/{k}',
                    {
                        'words': words,
                        'target': start,
                        'target_len': length,
                        'lemma': lemma,
                        'supersense': s.lexfile,
                        'pos': s.pos,
                        'mfs_supersense': mfs,
                        'mfs_pos': SUPERSENSES[mfs].split('.')[0],
                        'synset': synset,
                    },
                )


def _lines(wordnet_dir: str, name: str):
    """Data lines of a WordNet file (the license header lines start with two spaces)."""
    with open(os.path.join(wordnet_dir, name), encoding='utf-8') as f:
        yield from (line.rstrip('\n') for line in f if line.strip() and not line.startswith('  '))


class WordnetWic(tfds.core.GeneratorBasedBuilder):
    """WordNet example sentences: target word -> supersense (45) and POS (4)."""

    VERSION = tfds.core.Version('1.0.0')
    RELEASE_NOTES = {'1.0.0': 'WordNet 3.0 gloss examples, morphy targets, lemma-disjoint splits.'}

    def __init__(self, *, wordnet_dir: str = WORDNET_DIR, **kwargs):
        self._wordnet_dir = wordnet_dir
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        label = lambda names: tfds.features.ClassLabel(names=list(names))
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    'words': tfds.features.Sequence(tfds.features.Text()),
                    'target': tfds.features.Scalar(dtype=np.int32),
                    'target_len': tfds.features.Scalar(dtype=np.int32),
                    'lemma': tfds.features.Text(),
                    'synset': tfds.features.Text(),
                    'supersense': label(SUPERSENSES),
                    'pos': label(POS),
                    'mfs_supersense': label(SUPERSENSES),
                    'mfs_pos': label(POS),
                }
            ),
            homepage='https://wordnet.princeton.edu/',
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing is downloaded: the installed WordNet files are read
        stats = collections.Counter()
        examples = list(Lexicon(self._wordnet_dir).examples(stats))
        print(
            f'wordnet_wic: {stats["sentences"]} example sentences, {stats["no_target"]} without '
            f'a findable target word dropped, {len(examples)} kept'
        )
        return {split: self._generate_examples(examples, split) for split in ('train', 'validation', 'test')}

    def _generate_examples(self, examples, split):
        for key, ex in examples:
            if split_of(ex['lemma']) == split:
                yield key, ex

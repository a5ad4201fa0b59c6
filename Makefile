# One virtual environment in .venv; every target creates it when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup setup-browser test test-slow lint wheel-smoke bench clean

# pyproject.toml declares ranges; constraints.txt pins the exact versions tested here.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
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

# The CI suite: everything but tests marked slow, lint, then the wheel as a user gets it.
test: $(STAMP) setup-browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q
	$(BIN)/ruff check src tests benchmarks scripts
	$(MAKE) --no-print-directory wheel-smoke

# Build the sdist and wheel, install the wheel with every extra into a fresh venv (pinned by
# constraints.txt) and run `ferkit --version` and `ferkit predict` on a shared photo.
wheel-smoke: $(STAMP)
	bash scripts/wheel_smoke.sh $(BIN)/python

test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache

.PHONY: test lint browser bench

# Debian's Chromium, which the browser tests drive (Playwright cannot download a browser
# here). Another path: make test CHROMIUM=/path/to/chromium
CHROMIUM ?= /usr/bin/chromium

# The whole suite: lint, then every test (two processes on this 2-core machine). Without
# Chromium the browser tests are skipped, with the reason at the end of the report (-rs).
test: lint browser
	ETSIM_CHROMIUM="$(CHROMIUM)" python -m pytest -q -rs -n 2 tests

lint:
	python -m ruff check .

# Chromium for the browser tests: installed with apt-get as root (or with sudo if it needs
# no password); otherwise one message saying how, and the browser tests are skipped.
browser:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" -eq 0 ]; then \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo -n apt-get update -qq && \
		sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make: Chromium is not installed at $(CHROMIUM) and this user cannot install it;" \
			"the browser tests will be skipped. To run them: sudo apt-get install chromium"; \
	fi

bench:
	python bench/bench_china.py
	python bench/bench_sweep.py

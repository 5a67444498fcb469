.PHONY: test lint browser bench

# The whole suite: lint, then every test (two processes on this 2-core machine).
test: lint browser
	python -m pytest -q -n 2 tests

lint:
	python -m ruff check .

# The browser tests drive Debian's chromium (Playwright cannot download a browser here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

bench:
	python bench/bench_china.py
	python bench/bench_sweep.py

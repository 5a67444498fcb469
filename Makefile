.PHONY: test lint bench

# The whole suite: lint, then every test (two processes on this 2-core machine).
test: lint
	python -m pytest -q -n 2 tests

lint:
	python -m ruff check .

bench:
	python bench/bench_china.py

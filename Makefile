# o4a_nav: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up everything first (idempotent, quick when nothing changed).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m o4a_nav.cli demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	bash scripts/run_benchmark.sh

clean:
	rm -rf build_ws .pytest_cache

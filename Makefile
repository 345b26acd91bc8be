# o4a_nav: the two commands a newcomer needs are `make demo` and `make test`.
# Both set up everything first (idempotent, quick when nothing changed).
PY := .venv/bin/python
PYTEST_ARGS ?=

LINT_PATHS := o4a_nav test scripts launch setup.py

.PHONY: setup demo test test-fast lint bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m o4a_nav.cli demo

test: setup lint
	$(PY) -m pytest -q --durations=15 $(PYTEST_ARGS)

# The ROS-free core suite (no rclpy nodes, no launch files, nothing marked slow): a few minutes.
test-fast: setup lint
	$(PY) -m pytest -q -m "not ros and not slow" --durations=10 $(PYTEST_ARGS)

# ruff: syntax errors, pyflakes and function complexity (ruff.toml); vulture: code nothing uses
# (vulture_whitelist.py lists what frameworks call).
lint: setup
	.venv/bin/ruff check --no-cache $(LINT_PATHS)
	.venv/bin/vulture $(LINT_PATHS) vulture_whitelist.py --min-confidence 60

bench: setup
	bash scripts/run_benchmark.sh

clean:
	rm -rf build_ws .pytest_cache

# The two commands of the README: `make run` and `make test`. Both set everything up first.
.PHONY: setup run test lint bench clean

setup:
	@bash scripts/setup.sh

run: setup
	@.venv/bin/meshforge start

test: setup
	@.venv/bin/pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy app meshforge scheduling persistence deployments

bench:
	@MESHFORGE_SETUP_EXTRA=bench bash scripts/setup.sh
	.venv/bin/python benchmarks/api_overhead.py

clean:
	rm -rf .meshforge data .pytest_cache

# Hostfleet: `make run` starts the panel, `make test` runs every test (and the database's again on PostgreSQL).
.PHONY: run test test-fast lab lab-down bench soak lint help

PY := .venv/bin/python
N ?= 3

help:
	@echo "make run        start the whole panel on embedded defaults (PORT, HOSTFLEET_DATA, ADMIN_PASSWORD, DATABASE_URL, REDIS_URL)"
	@echo "make test       install what the tests need, check the code with ruff, run the whole suite on SQLite, then"
	@echo "                the tests that use the database again on PostgreSQL (PYTEST_ARGS go to both runs)"
	@echo "make lint       ruff, then the import contracts of .importlinter (which layer may import which)"
	@echo "make test-fast  the suite without lab, browser and PostgreSQL tests"
	@echo "make lab N=3    start a lab of N Debian nodes (root); make lab-down removes it"
	@echo "make bench      print the benchmark figures"
	@echo "make soak       60 s of load with a link cut and a worker SIGKILL on lab nodes hf-node5..8 (root; starts the lab if needed)"

run:
	@scripts/bootstrap-venv.sh requirements.txt
	@$(PY) -m app.runner

test:
	@scripts/bootstrap-venv.sh requirements-test.txt
	@scripts/install-test-deps.sh
	@$(MAKE) --no-print-directory lint || { echo "make lint found the problems above" >&2; exit 1; }
	@scripts/test-both-databases.sh $(PYTEST_ARGS)

test-fast:
	@scripts/bootstrap-venv.sh requirements-test.txt
	$(PY) -m pytest -m "not lab and not browser and not postgres" $(PYTEST_ARGS)

lab:
	@scripts/bootstrap-venv.sh requirements-test.txt
	@scripts/install-test-deps.sh
	$(PY) -m tests.lab up -n $(N)

lab-down:
	$(PY) -m tests.lab down

bench:
	@scripts/bootstrap-venv.sh requirements-test.txt
	@for script in agent_rss agent_ops_bench fanout_bench proxy_bench pages_bench setup_bench compare_bench; do \
		echo "== bench/$$script.py"; $(PY) bench/$$script.py || exit 1; done
	@echo "== bench/plot.py"; venv=$$($(PY) bench/compare_bench.py --venv) && $$venv/bin/python bench/plot.py
	@echo "== bench/converge_bench.py (last: it takes the lab down)"; $(PY) bench/converge_bench.py

soak:
	@scripts/bootstrap-venv.sh requirements-test.txt
	@scripts/install-test-deps.sh
	$(PY) -m tests.lab up -n 8
	$(PY) -m tests.soak $(SOAK_ARGS)

lint:
	@scripts/bootstrap-venv.sh requirements-test.txt
	@$(PY) -m ruff check --quiet .
	@.venv/bin/lint-imports --no-cache --no-logo --config .importlinter

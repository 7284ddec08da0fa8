# Two entry points for a fresh machine: `make run` (install + start the app) and `make test`
# (install + every test); both install Debian's Fashion-MNIST package. Everything else here is a
# building block of those two.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: run test install browser fashion-mnist worker bench lint clean-data

run: install fashion-mnist
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: install browser fashion-mnist
	$(PY) -m pytest

# A venv that sees already-installed site packages, so a machine that has the pinned
# torch/torchvision pair does not download 5 GB again; pip installs only what is missing.
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

install: $(STAMP)

# Playwright cannot download its own browsers here: the browser tests drive Debian's chromium.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# The bundled real data set: Debian's package holds the official Fashion-MNIST IDX files (no
# download at run time; without it the app offers digits alone and says how to install it).
fashion-mnist:
	@dpkg-query -W -f='$${Status}' dataset-fashion-mnist 2>/dev/null | grep -q 'ok installed' || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist; }

worker: install
	$(PY) -m lwdash worker

bench: install
	$(PY) bench/techniques.py

lint: install
	$(PY) -m ruff check lwdash tests
	$(PY) -m mypy lwdash

clean-data:
	rm -rf .lwdash-data

# pyweb-popcon entry points.  Debian's Python and tools only: a pyenv shim
# first in PATH must not decide which python3 runs the tests.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin
PYTHON := /usr/bin/python3
export PYTHONPATH := $(CURDIR)/src
export PYTHONDONTWRITEBYTECODE := 1

# What the tests and benchmarks need, from Debian's archive.
TEST_DEPS := python3-packaging python3-pytest python3-pytest-timeout \
	python3-hypothesis python3-venv python3-pip gnupg

.PHONY: deps test check bench show

deps:
	@missing=$$(for p in $(TEST_DEPS); do \
	    dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing:" $$missing; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  else \
	    echo "Missing Debian packages; as root run: apt-get install" $$missing >&2; exit 1; \
	  fi; \
	fi

test: deps
	$(PYTHON) -m pytest tests

check: deps
	$(PYTHON) -m pytest tests/unit

bench: deps
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(PYTHON) $$b || exit 1; done

show:
	$(PYTHON) -m pyweb_popcon show

# pyweb-popcon entry points.  Debian's Python and tools only: a pyenv shim
# first in PATH must not decide which python3 runs the tests.
export PATH := /usr/sbin:/usr/bin:/sbin:/bin
PYTHON := /usr/bin/python3
export PYTHONPATH := $(CURDIR)/src
export PYTHONDONTWRITEBYTECODE := 1

# What the tests and benchmarks need, from Debian's archive.
TEST_DEPS := python3-packaging python3-pytest python3-pytest-timeout \
	python3-hypothesis python3-numpy python3-venv python3-pip gnupg \
	python3-gnupg python3-requests python3-socks python3-systemd openssl \
	debhelper dh-python pybuild-plugin-pyproject po-debconf python3-all \
	python3-setuptools lintian piuparts debootstrap systemd-container \
	gunicorn python3-jinja2 python3-matplotlib python3-psycopg postgresql \
	chromium wrk nginx python3-tqdm pdns-server pdns-backend-remote unbound \
	e2fsprogs fakeroot faketime python3-scipy

.PHONY: deps test test-all check bench show demo deb lint system-test piuparts

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

# Everything on bookworm (Debian 12, this host), the build in a trixie tree
# (unit tests under 3.13, lintian) and the system story with autopkgtest in
# a booted trixie (PYWEB_POPCON_RELEASE: tests/booted.py).
test: deps
	$(PYTHON) -m pytest -m "not all_releases" tests
	PYWEB_POPCON_RELEASE=trixie $(PYTHON) -m pytest tests/system/test_system.py

# And the rest of trixie's stories and piuparts; sid's build (its Pythons),
# system story, autopkgtest and piuparts.
TRIXIE_MORE := tests/system/test_server_only.py tests/system/test_front.py \
	tests/package/test_package.py::test_piuparts
test-all: test
	$(PYTHON) -m pytest -m all_releases tests
	PYWEB_POPCON_RELEASE=trixie $(PYTHON) -m pytest $(TRIXIE_MORE)
	PYWEB_POPCON_RELEASE=sid $(PYTHON) -m pytest tests/system/test_system.py \
	    tests/package/test_package.py::test_piuparts

# forkserver, Python 3.14's default: no test may need fork, 3.11's.
check: deps
	$(PYTHON) -m pytest --start-method=forkserver tests/unit

bench: deps
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(PYTHON) $$b || exit 1; done

show:
	$(PYTHON) -m pyweb_popcon.client show

# The whole loop on this machine: key, receiver, submit, ingest, aggregate.
demo: deps
	$(PYTHON) tests/demo.py

# Debian packages, built from a copy of the tree outside the checkout (never
# in its parent directory); the results land in DEB_OUT.
DEB_BUILD_DIR ?= /var/tmp/pyweb-popcon-build
DEB_OUT ?= /var/tmp/pyweb-popcon-debs

deb:
	tests/package/build-deb $(DEB_BUILD_DIR) $(DEB_OUT)

# lintian --pedantic, systemd-analyze verify and security on what deb built.
lint: deb
	tests/package/lint $(DEB_OUT)

# piuparts install+purge of each binary package in a bookworm chroot.
piuparts: deb
	tests/package/piuparts $(DEB_OUT)

# The booted-systemd test (root and systemd-nspawn; skips with a reason
# otherwise).  "make test" runs it too, building the packages itself.
system-test: deps deb
	PYWEB_POPCON_DEBS=$(DEB_OUT) $(PYTHON) -m pytest tests/system

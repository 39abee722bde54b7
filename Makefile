# Entry points a user types: make, make check, make guest, make demo,
# make bench, make fuzz, make install, make deb.  Meson and ninja do the C build
# underneath; shell scripts build the guest kit.

BUILD    ?= build
ASAN     ?= $(BUILD)/asan
PREFIX   ?= /usr/local
PYTEST   ?= /usr/bin/python3 -m pytest
MESON_SETUP = meson setup --werror --prefix=$(PREFIX)

.PHONY: all asan guest check check-deb test demo bench fuzz install clean deps deb

all: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(BUILD)/build.ninja:
	$(MESON_SETUP) $(BUILD)

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
asan: $(ASAN)/build.ninja
	ninja -C $(ASAN)

$(ASAN)/build.ninja:
	$(MESON_SETUP) -Db_sanitize=address,undefined -Db_lundef=false $(ASAN)

guest: all
	guest/build.sh $(BUILD)/guest

deps:
	scripts/install-deps.sh

check: deps
	$(MAKE) all asan guest
	$(PYTEST) -ra tests

# Run the tests without rebuilding or installing anything.
test:
	$(PYTEST) -ra tests

demo: deps
	$(MAKE) guest
	scripts/demo.sh $(BUILD)

# Installs what it measures against too (libvirt: install-deps.sh --bench).
bench:
	scripts/install-deps.sh --bench
	$(MAKE) all guest
	/usr/bin/python3 bench/bench.py $(BENCH_ARGS)

fuzz:
	scripts/fuzz.sh $(BUILD)/fuzz

# build/vmhost_VERSION_amd64.deb, built from a copy of the tree and
# checked with lintian (scripts/deb.sh).
deb:
	scripts/deb.sh $(BUILD)

# The package installed with dpkg -i, the demo run from the installed
# paths, then purged (tests/test_deb.py): not part of make check, since it
# installs system-wide; CI runs it after make check.
check-deb: deb guest
	VMHOST_TEST_DEB=1 $(PYTEST) -ra tests/test_deb.py

install: all
	meson configure -Dprefix=$(PREFIX) $(BUILD)
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir $(DESTDIR))

clean:
	rm -rf $(BUILD)

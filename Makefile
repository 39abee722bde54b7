# Entry points a user types: make, make check, make guest, make demo,
# make bench, make fuzz, make install.  Meson and ninja do the C build
# underneath; shell scripts build the guest kit.

BUILD    ?= build
ASAN     ?= $(BUILD)/asan
PREFIX   ?= /usr/local
PYTEST   ?= /usr/bin/python3 -m pytest
MESON_SETUP = meson setup --werror --prefix=$(PREFIX)

.PHONY: all asan guest check test demo bench fuzz install clean deps

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

install: all
	meson configure -Dprefix=$(PREFIX) $(BUILD)
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir $(DESTDIR))

clean:
	rm -rf $(BUILD)

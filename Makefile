# Quick start: `make run` (install, then the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run smoke emulator test browser lint format bench bench-traffic bench-analysis bench-lag bench-simulate bench-agreement bench-warm bench-advise bench-advise-day bench-calibrate bench-search bench-soak bench-schedule lock clean

install: $(STAMP)

# The stamp makes `install` idempotent: it reinstalls only when the lock or the
# project metadata changed.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Error: edgebench needs Python >= 3.11 (set PYTHON=python3.x)" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# The main job: the smoke scenario end to end against the embedded emulator (about a minute).
run: install
	$(BIN)/edgebench run scenarios/smoke.toml

# A shorter smoke run, as CI runs it after the tests.
smoke: install
	$(BIN)/edgebench run scenarios/smoke.toml --duration 15s

emulator: install
	$(BIN)/edgebench emulator

# Two workers: the live tests (processes, sockets, the browser) are three xdist groups
# (live, runs, net: see each module's pytestmark), each one test after another, a group at
# a time on a worker; the in-process tests run beside them.
test: install lint
	$(BIN)/pytest -n 2 --dist loadgroup

# The web UI's browser test drives Debian's Chromium: `make browser` installs it when missing
# (CI does, before `make test`); `make test` installs no system package and skips that test
# without it.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the web UI test ..."; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	} || { echo "Error: cannot install chromium (apt-get); install it, then run make test" >&2; exit 2; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python bench/emulator_throughput.py

bench-traffic: install
	$(BIN)/python bench/traffic_efficiency.py

bench-analysis: install
	$(BIN)/python bench/analysis_speed.py

bench-lag: install
	$(BIN)/python bench/send_lag.py

bench-simulate: install
	$(BIN)/python bench/simulate_speed.py

bench-agreement: install
	$(BIN)/python bench/agreement.py

# A forecast's peak hour started warm against the day's same hour (issue 24).
bench-warm: install
	$(BIN)/python bench/warm_start.py

# Half an hour at the full limit with two processes (issue 14): memory, lag, 429s.
bench-advise: install
	$(BIN)/python bench/advise_cost.py

bench-advise-day: install
	$(BIN)/python bench/advise_day.py

bench-calibrate: install
	$(BIN)/python bench/calibrate_recovery.py

bench-search: install
	$(BIN)/python bench/search_jobs.py

bench-soak: install
	$(BIN)/python bench/soak.py

# A day's schedule from its forecast by the renewal equation (issue 34): under a second.
bench-schedule: install
	$(BIN)/python bench/schedule_build.py

# Regenerate the lock after changing dependencies in pyproject.toml.
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export MUJOCO_GL ?= egl

.PHONY: demo test test-slow test-all bench install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: on these machines that is the CPU build on disk (no CUDA download).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,ros,cluster]'
	# control_msgs' FollowJointTrajectory/GripperCommand (not on PyPI), generated from their public
	# definitions with the ROS 2 generators the ros extra brings; needs gcc, g++ and the Python headers.
	# Without them the bridge falls back to the controllers' topics (a warning, not a failure).
	$(PY) -m ros_bridge.interfaces || echo "warning: control_msgs not built: the ROS 2 bridge uses topics only"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/skillstack demo

# Tests run in two steps; CI (.ci/run) runs both and fails if either fails.
#   make test       the fast set (-m "not slow"): every test but the heavy end-to-end ones
#                   (about 5 minutes on 2 idle cores).
#   make test-slow  the heavy end-to-end tests, marked @pytest.mark.slow: training to a success
#                   rate, every runnable block of the README and docs, `skillstack demo`, the SBD
#                   benchmark, Ray sweeps (about 9 minutes on 2 idle cores).
#   make test-all   both, one after the other.
# Each runs in two steps: the tests that start no ROS 2 nodes or Ray cluster on TEST_WORKERS
# pytest-xdist workers (TEST_WORKERS=0: one process), then those that do (marked `nodes`) alone;
# both steps run, and the target fails if either did. tests/conftest.py says why.
# No test asserts a speed: rates and latencies are measured by `skillstack bench ...`.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadgroup
# $(call two_steps,MARK EXPRESSION)
two_steps = $(PY) -m pytest -q -m "$(1) and not nodes" $(XDIST); a=$$?; \
	$(PY) -m pytest -q -m "$(1) and nodes"; b=$$?; test $$a -eq 0 -a $$b -eq 0

test: $(STAMP)
	$(call two_steps,not slow)

test-slow: $(STAMP)
	$(call two_steps,slow)

test-all: test test-slow

bench: $(STAMP)
	$(VENV)/bin/skillstack bench envs

clean:
	rm -rf $(VENV) runs build *.egg-info

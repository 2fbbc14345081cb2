# Two commands do all setup: `make demo` and `make test`. Each creates .venv when
# missing and installs what it needs; the stamp reinstalls only when metadata changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgepose-installed
# torch is pinned: an unpinned torch pulls several GB of CUDA packages, while
# 2.13.0 resolves to a local CPU wheel on the project's machines.
TORCH := torch==2.13.0
DEMO_CHECKPOINT := assets/models/hrnet_w8_128x96_synthetic.pth
TRAIN_DATA := .cache/synthetic/train

.PHONY: demo test test-all demo-checkpoint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[export,calib,eval,test]"
	touch $@

demo: $(STAMP)
	$(PY) tools/demo.py --out out/demo

# The recipe of the shipped demo checkpoint (about 26 minutes on 2 idle CPU cores); see
# README "Data and the demo model".
demo-checkpoint: $(STAMP)
	$(PY) -m calib.synthetic --out $(TRAIN_DATA) --count 4000 --seed 1 --quiet
	$(PY) -m export.train --annotations $(TRAIN_DATA)/person_keypoints.json \
		--images $(TRAIN_DATA)/images --steps 1400 --out $(DEMO_CHECKPOINT)

test: $(STAMP)
	$(PY) -m pytest -q

# Also the slow tests CI skips.
test-all: $(STAMP)
	EDGEPOSE_SLOW=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache

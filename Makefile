# Two commands do all setup: `make demo` and `make test`. Each creates .venv when
# missing and installs what it needs; the stamp reinstalls only when metadata changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgepose-installed
# torch is pinned: an unpinned torch pulls several GB of CUDA packages, while
# 2.13.0 resolves to a local CPU wheel on the project's machines.
TORCH := torch==2.13.0
OUT := out/demo
DEMO_IMAGE := assets/demo/two_people.png
DEMO_BOXES := 40,20,150,330;250,30,150,320

.PHONY: demo test test-all clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[export,calib,eval,test]"
	touch $@

demo: $(STAMP)
	mkdir -p $(OUT)
	$(PY) -m edgepose export hrnet --variant w8_128x96 --random-init --out $(OUT)/hrnet_w8_128x96.onnx
	$(PY) -m edgepose infer --model $(OUT)/hrnet_w8_128x96.onnx --image $(DEMO_IMAGE) \
		--boxes "$(DEMO_BOXES)" --json $(OUT)/poses.json --draw $(OUT)/poses.png

test: $(STAMP)
	$(PY) -m pytest -q

# Also the slow tests CI skips.
test-all: $(STAMP)
	EDGEPOSE_SLOW=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache

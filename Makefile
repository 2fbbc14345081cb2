# Two commands do all setup: `make demo` and `make test`. Each creates .venv when
# missing and installs what it needs; the stamp reinstalls only when metadata changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgepose-installed
# torch is pinned: an unpinned torch pulls several GB of CUDA packages, while
# 2.13.0 resolves to a local CPU wheel on the project's machines.
TORCH := torch==2.13.0
DEMO_CHECKPOINT := assets/models/hrnet_w10_128x96_synthetic.pth
TRAIN_DATA := .cache/synthetic/train
OPENPOSE_CHECKPOINT := assets/models/openpose_coco18_d8_synthetic.pth
# The first 4000 of the same images (seed 1), annotated in OpenPose's COCO-18 order.
TRAIN_DATA_18 := .cache/synthetic/train18
DEMO_DETECTOR := assets/models/person_detector_synthetic.onnx
# The first 4000 of the same images (seed 1); the detector trains on their person boxes.
TRAIN_DATA_DETECTOR := .cache/synthetic/train-detector

.PHONY: demo test test-all triton-server demo-checkpoint demo-checkpoint-openpose demo-detector clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[export,calib,eval,test,plot,track,triton]"
	touch $@

demo: $(STAMP)
	$(PY) tools/demo.py --out out/demo

# The recipes of the shipped demo checkpoints (28 and 29.5 minutes of training on 2 CPU
# cores with native bfloat16, the first compiled); see README "Data and the demo models".
demo-checkpoint: $(STAMP)
	$(PY) -m export.training.synthetic --out $(TRAIN_DATA) --count 8000 --seed 1 --quiet
	$(PY) -m export.training.hrnet --annotations $(TRAIN_DATA)/person_keypoints.json \
		--images $(TRAIN_DATA)/images --steps 3800 --out $(DEMO_CHECKPOINT)

demo-checkpoint-openpose: $(STAMP)
	$(PY) -m export.training.synthetic --out $(TRAIN_DATA_18) --count 4000 --seed 1 --layout coco18 --quiet
	$(PY) -m export.training.openpose --annotations $(TRAIN_DATA_18)/person_keypoints.json \
		--images $(TRAIN_DATA_18)/images --variant coco18_d8 --steps 4000 --out $(OPENPOSE_CHECKPOINT)

# The demo person detector (Ultralytics YOLOv8 ONNX layout) and its record, scored on 300
# unseen synthetic images (seed 2); see README "Data and the demo models".
demo-detector: $(STAMP)
	$(PY) -m export.training.synthetic --out $(TRAIN_DATA_DETECTOR) --count 4000 --seed 1 --quiet
	$(PY) -m export.training.detector --annotations $(TRAIN_DATA_DETECTOR)/person_keypoints.json \
		--images $(TRAIN_DATA_DETECTOR)/images --out $(DEMO_DETECTOR)

# A real Triton server for the tests (tests/edgepose/serve): the tritonserver 2.51 that the
# nvidia-pytriton wheel bundles, unpacked without its dependencies (it pins numpy < 2), and
# beside it the packages the repository's Python models import on the server. Its Python
# backend stub is built against numpy 1, hence a numpy of its own; see README "Serving
# with Triton".
TRITON_HOME := $(VENV)/triton-server
TRITON_STAMP := $(TRITON_HOME)/.installed
$(TRITON_STAMP): $(STAMP)
	rm -rf $(TRITON_HOME)
	$(PY) -m pip install --quiet --no-deps --target $(TRITON_HOME)/wheel nvidia-pytriton==0.7.0
	$(PY) -m pip install --quiet --target $(TRITON_HOME)/site-packages "numpy>=1.24,<2" \
		"opencv-python-headless==4.10.0.84" "onnxruntime>=1.17"
	touch $@

triton-server: $(TRITON_STAMP)

test: $(STAMP) $(TRITON_STAMP)
	$(PY) -m pytest -q

# Also the slow tests CI skips.
test-all: $(STAMP) $(TRITON_STAMP)
	EDGEPOSE_SLOW=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) out .pytest_cache

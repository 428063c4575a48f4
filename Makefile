# Newcomers need two targets: `make demo` and `make test`. Both set everything up first.
include versions.env

PYTHON ?= python$(PYTHON_VERSION)
VENV ?= .venv
PY := $(VENV)/bin/python
# The TensorFlow distribution to install; the GPU image passes TF_PACKAGE='tensorflow[and-cuda]'.
TF_PACKAGE ?= tensorflow-cpu
# Where torch comes from: empty means pip's index (the GPU image: PyPI's CUDA build); the CPU image
# passes download.pytorch.org's CPU index (docker/Dockerfile.cpu).
TORCH_INDEX_URL ?=
# transformers 4.57 and tf-keras for examples/hf_gpt2/, beside the environment (versions.env says why):
# PYTHONPATH=$(TRANSFORMERS_TF):examples/hf_gpt2 harness train --family hf_gpt2_family:FAMILY ...
TRANSFORMERS_TF := $(VENV)/transformers-tf
# Re-run setup whenever the pins, the package metadata or the Horovod build script change.
# torch is installed after TensorFlow: in the GPU image both bring a cuDNN 9 and a NCCL 2 wheel that
# write the same files (nvidia/cudnn, nvidia/nccl); the last installed are kept, and Horovod is built
# against torch's (docs/gpu-image.md).
SETUP_STAMP := $(VENV)/.setup-complete

.PHONY: setup demo test test-unit test-parallel lint doctor bench image-test clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): versions.env pyproject.toml launch/build_horovod.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TF_PACKAGE)==$(TENSORFLOW_VERSION)
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)) torch==$(TORCH_VERSION)
	$(PY) launch/build_horovod.py
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -rf $(TRANSFORMERS_TF)
	$(PY) -m pip install --quiet --no-deps --target $(TRANSFORMERS_TF) transformers==$(TRANSFORMERS_TF_VERSION) \
		tf-keras==$(TF_KERAS_VERSION) huggingface_hub==$(HF_HUB_TF_VERSION) tokenizers==$(TOKENIZERS_TF_VERSION)
	@touch $@

# The demo: the default model trained on 2 ranks by each framework from the same weights on the same
# batches (`harness parity`: both runs, their measured difference, the plot), then the torch run's
# checkpoint continued in TensorFlow for DEMO_MORE steps.
DEMO_STEPS ?= 150
DEMO_MORE ?= 50
demo: setup
	$(VENV)/bin/harness doctor
	rm -rf runs/demo
	$(VENV)/bin/harness parity --np 2 --steps $(DEMO_STEPS) --model default --out runs/demo
	cp -r runs/demo/torch runs/demo/torch-then-tf
	$(VENV)/bin/harness train --framework tf --np 2 --steps $$(($(DEMO_STEPS) + $(DEMO_MORE))) --model default \
		--run-dir runs/demo/torch-then-tf --resume --no-progress

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test-unit: setup
	$(PY) -m pytest tests/unit

test-parallel: setup
	$(PY) -m pytest tests/parallel

test: lint test-unit test-parallel

bench: setup
	$(VENV)/bin/harness bench --out runs/bench

doctor: setup
	$(VENV)/bin/harness doctor

# Build the images with buildah on a debootstrapped Debian base and train inside them (launch/image_test.py;
# root, buildah and debootstrap): docker/Dockerfile.cpu always, docker/Dockerfile (GPU) when its inputs
# changed since docker/gpu-image.verified. IMAGE_TEST_ARGS: --gpu always|never|only, --fresh (drop the caches).
image-test:
	$(PYTHON) -m launch.image_test $(IMAGE_TEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

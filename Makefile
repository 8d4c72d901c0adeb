# make demo  - set up .venv, then run the whole workflow on the bundled sample
# make test  - set up .venv, then run the test suite
# make test-fast - the tests not marked slow (no training, no database, no child process): the edit loop
# make bench - set up .venv, then run the benchmarks (writes benchmarks/RESULTS.md)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export FIFTYONE_DO_NOT_TRACK := true
export PYTHONUNBUFFERED := 1
# the offline fallback mongod is 6.0.5; FiftyOne only warns that it is old
export FIFTYONE_DATABASE_VALIDATION ?= false

.PHONY: setup test test-fast demo bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,export,sweep]'
	$(PY) -m yolo_tl.analysis.store.mongod ensure-mongod
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests -q --durations=25

test-fast: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow"

# the demo fine-tunes the real COCO checkpoint where ../shared has it; it is never copied into the
# repository (its SOURCE.md; AGPL-3.0), so a clone without ../shared pretrains on a synthetic task instead
COCO_START := $(wildcard ../shared/weights/yolov5n-v6.1-coco.pt)

demo: $(STAMP)
	$(VENV)/bin/yolo-tl demo $(if $(COCO_START),--weights $(COCO_START))

bench: $(STAMP)
	$(PY) -m benchmarks.run

lint: $(STAMP)
	$(VENV)/bin/ruff check yolo_tl tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# One entry point for every chore; the README and CI call these targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    := out

.PHONY: setup demo tuyen-quang tuyen-quang-report binh-dinh thai-nguyen seed-scenarios eid-scenarios test test-tools test-unit test-integration lint typecheck bench kafka-jars clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "popsync needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install popsync with its test tools

kafka-jars: setup  ## fetch the pinned Apache Kafka jars from Maven Central into the cache (done on first use too)
	$(BIN)/python -c 'from popsync.kafka_local import fetch_kafka_jars; print(fetch_kafka_jars(log=print))'

demo: setup  ## run the quick demo scenario (starts Kafka, the NDXP mock and a worker for you)
	@mkdir -p $(OUT)
	$(BIN)/popsync simulate scenarios/demo.yaml --summary $(OUT)/demo-summary.json --results $(OUT)/demo-results.jsonl

tuyen-quang: setup  ## reproduce Tuyên Quang's December 2023 insurance figure (757,543 records)
	@mkdir -p $(OUT)
	$(BIN)/popsync simulate scenarios/tuyen-quang-2023-12-insurance.yaml --summary $(OUT)/tuyen-quang-summary.json

tuyen-quang-report: setup  ## Tuyên Quang 2023-12: insurance, labour and linked procedures, then the Markdown report (~30 min)
	@mkdir -p $(OUT)
	$(BIN)/popsync simulate scenarios/tuyen-quang-2023-12-insurance.yaml --summary $(OUT)/tq-insurance.json
	$(BIN)/popsync simulate scenarios/tuyen-quang-2023-12-labour.yaml --summary $(OUT)/tq-labour.json
	$(BIN)/popsync simulate scenarios/tuyen-quang-2023-12-linked.yaml --summary $(OUT)/tq-linked.json
	$(BIN)/popsync report $(OUT)/tq-insurance.json $(OUT)/tq-labour.json $(OUT)/tq-linked.json --markdown $(OUT)/tuyen-quang-2023-12.md

binh-dinh: setup  ## Bình Định 2024-H1 labour with the cleansing loop (751,108 records, 54,933 fixed; ~20 min)
	@mkdir -p $(OUT)
	$(BIN)/popsync simulate scenarios/binh-dinh-2024-h1-labour.yaml --summary $(OUT)/bd-labour.json --report $(OUT)/binh-dinh-2024-h1.md

thai-nguyen: setup  ## Thái Nguyên 2023 insurance (1,189,968 records; ~25 min)
	@mkdir -p $(OUT)
	$(BIN)/popsync simulate scenarios/thai-nguyen-2023-insurance.yaml --summary $(OUT)/tn-insurance.json --report $(OUT)/thai-nguyen-2023.md

seed-scenarios: tuyen-quang-report binh-dinh thai-nguyen eid-scenarios  ## every figure of DOMAIN.md (long)

eid-scenarios: setup  ## reproduce the seeds' e-ID figures (Tuyên Quang 2023-12, Bình Định 2024-H1; long)
	@mkdir -p $(OUT)
	$(BIN)/popsync simulate scenarios/tuyen-quang-2023-12-eid.yaml --summary $(OUT)/tuyen-quang-eid-summary.json
	$(BIN)/popsync simulate scenarios/binh-dinh-2024-h1-eid.yaml --summary $(OUT)/binh-dinh-eid-summary.json

test-tools:  ## promtool, chromium, PostgreSQL (apt-get; needs root), kustomize (Go) and checkov (own venv) for their tests
	@scripts/install-promtool.sh || echo "promtool missing: the deploy-config tests will skip (fail under CI)"
	@scripts/install-postgres.sh || { if [ -n "$$CI" ]; then exit 1; fi; echo "PostgreSQL missing: the PostgreSQL store tests will skip (fail under CI)"; }
	@scripts/install-chromium.sh || echo "chromium missing: the dashboard browser test will skip (fail under CI)"
	@scripts/install-kustomize.sh || echo "kustomize missing: the Kubernetes manifest tests will skip (fail under CI)"
	@scripts/install-checkov.sh || echo "checkov missing: the Kubernetes policy scan will skip (fail under CI)"

test: setup kafka-jars test-tools  ## the whole test suite: unit, then integration on a real broker
	$(BIN)/pytest tests

test-unit: setup
	$(BIN)/pytest tests/unit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

bench: setup  ## throughput benchmarks (ratios against a baseline measured in the same run)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache

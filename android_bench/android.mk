# On-device latency on Android phones (android_bench/, issue 6).
# Included by the main Makefile, which defines PY (the venv python), OUT,
# ARGS and the $(STAMP) prerequisite that builds the venv.
#
#   make android-setup                  install adb (Debian package) if missing
#   make android-tools [ARGS=--pin]     download the pinned benchmark_model release
#                                       into android_bench/bin/ (--pin: record its sha256)
#   make bench-android OUT=artifacts/mnist_cnn [BENCHMARK_MODEL=path] [ARGS=...]

# apt-get needs root; use sudo only when not already root.
ANDROID_SUDO = $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: android-setup android-tools bench-android

android-setup:
	@if command -v adb >/dev/null 2>&1; then \
	  echo "adb found: $$(command -v adb)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  $(ANDROID_SUDO) apt-get update && \
	  $(ANDROID_SUDO) apt-get install -y adb; \
	else \
	  echo "error: adb is missing and apt-get is not available: install Android platform-tools and put adb on PATH" >&2; \
	  exit 2; \
	fi

android-tools: $(STAMP)
	$(PY) -m android_bench.tools $(ARGS)

bench-android: $(STAMP)
	$(PY) -m android_bench --out=$(OUT) $(if $(BENCHMARK_MODEL),--benchmark_model=$(BENCHMARK_MODEL)) $(ARGS)

"""The `.tflite` side: the model value, interpreter, inspection, cost, compatibility, latency, legacy runtime."""

"""The Keras side: fitting, distillation, flattening nested models, quantization support."""

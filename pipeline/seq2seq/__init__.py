"""English->Spanish translation (issue 31): data split, word tokenizer, a small Transformer
with greedy decoding inside the `.tflite`, its quantized variants, BLEU on LiteRT.

`tokenizer` and `data` need no TensorFlow; `model`, `train` and `export` do.
"""

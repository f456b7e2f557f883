"""Keras model -> pruned, QAT'd, full-int8 TFLite, validated on LiteRT.

`from pipeline import compress`: the whole run (`pipeline.api`); `from pipeline import
verbs`: its steps alone (prune, cluster, quantization_aware, convert, validate).
"""
from pipeline import verbs
from pipeline.api import Report, Variant, compress

__all__ = ["compress", "Report", "Variant", "verbs"]

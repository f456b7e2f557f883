"""Keras model -> pruned, QAT'd, full-int8 TFLite, validated on LiteRT.

`from pipeline import compress`: see `pipeline.api`.
"""
from pipeline.api import Report, Variant, compress

__all__ = ["compress", "Report", "Variant"]

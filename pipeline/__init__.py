"""Keras model -> pruned, QAT'd, full-int8 TFLite, validated on LiteRT."""

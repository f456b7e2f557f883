"""Text models on token ids: the tokenizer that travels with them, recurrent layers in a form
the converter quantizes, and scores that fit imbalanced classes."""

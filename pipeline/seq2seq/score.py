"""BLEU and chrF with sacrebleu, in the three forms the report gives: `bleu` on lowercased,
word-tokenized text with tokenize='none' (the probe's measure), `bleu_cased` with sacrebleu's
default 13a tokenizer on what a reader sees, `chrf` on the same. No TensorFlow here."""
import sacrebleu

from pipeline.seq2seq import tokenizer


def scores(vocab: tokenizer.Vocabulary, hypotheses, references) -> dict:
    """hypotheses: target id rows; references: the cased Spanish sentences."""
    lowered = [vocab.decode(ids) for ids in hypotheses]
    cased = [vocab.detokenize(ids) for ids in hypotheses]
    refs_lowered = [" ".join(tokenizer.split(r)) for r in references]
    return {
        "bleu": _lowered_bleu(lowered, refs_lowered),
        "bleu_cased": round(sacrebleu.corpus_bleu(cased, [list(references)]).score, 2),
        "chrf": round(sacrebleu.corpus_chrf(cased, [list(references)]).score, 2),
        "sentences": len(references),
    }


def bleu(vocab: tokenizer.Vocabulary, hypotheses, references) -> float:
    lowered = [vocab.decode(ids) for ids in hypotheses]
    return _lowered_bleu(lowered, [" ".join(tokenizer.split(r)) for r in references])


def _lowered_bleu(hypotheses: list, references: list) -> float:
    # force=True: the text is tokenized on purpose (the probe's measure), so sacrebleu's
    # "forgot to detokenize" warning would be noise on the user's terminal.
    return round(sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none",
                                       force=True).score, 2)

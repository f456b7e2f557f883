"""A user's data as their model expects it: the input contract applied, and the sanity
probe that keeps a pretrained model from being measured (and then retrained) on inputs
it was never meant to see.

The probe evaluates the user's own float model on a slice of the validation split under the
configured `--input_range` and the common alternatives. A configured range that scores
near chance while another clearly does not stops the run before any training, with the
flag value that fits; `--input_range=auto` takes the best one and the report says so.
"""
import numpy as np

from pipeline.contract import COMMON_RANGES, InputContract, format_range
from pipeline.errors import PipelineError

PROBE_EXAMPLES = 500
# Within this many points of the majority-class rate a model "scores near chance"; another
# range is "clearly" better when it beats chance and the configured range by this much.
NEAR_CHANCE_POINTS = 5.0
CLEARLY_BETTER_POINTS = 20.0


def chance_rate(labels: np.ndarray) -> float:
    """What always predicting the most frequent class scores."""
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def probe_scores(predict, x_raw: np.ndarray, y: np.ndarray, contract: InputContract,
                 head: str = "linear") -> dict[str, float]:
    """Top-1 of `predict` on `x_raw` under the configured range and the common ones."""
    from pipeline.training.heads import predicted_labels
    ranges = dict.fromkeys([(contract.low, contract.high), *COMMON_RANGES])
    return {format_range(low, high): float(np.mean(predicted_labels(
        predict(contract.with_range(low, high).apply(x_raw)), head) == y))
            for low, high in ranges}


def choose(scores: dict[str, float], configured: str, chance: float, auto: bool,
           model_name: str, examples: int) -> str:
    """The range to use: the best with `auto`; else the configured one, unless it scores
    near chance while another clearly does not (then one line naming the flag that fits)."""
    best = max(scores, key=scores.get)
    if auto:
        return best
    own, top = 100 * scores[configured], 100 * scores[best]
    near_chance = own <= 100 * chance + NEAR_CHANCE_POINTS
    clearly = top >= 100 * chance + CLEARLY_BETTER_POINTS and top >= own + CLEARLY_BETTER_POINTS
    if near_chance and clearly:
        raise PipelineError(
            f"{model_name} scores {own:.1f}% (chance {100 * chance:.1f}%) on {examples} "
            f"validation images with integer pixels mapped to --input_range={configured}, but {top:.1f}% "
            f"with --input_range={best}: pass --input_range={best} (or --input_range=auto)")
    return configured


def probe(model, x_raw: np.ndarray, y: np.ndarray, contract: InputContract, auto: bool,
          model_name: str) -> tuple[InputContract, dict]:
    """(the contract to use, the probe's findings for the report) for a pretrained
    classifier; integer inputs only (float inputs carry their own scale)."""
    from pipeline.training.heads import head_kind
    if not np.issubdtype(np.asarray(x_raw).dtype, np.integer):
        if auto:
            raise PipelineError("--input_range=auto needs integer inputs (pixels 0..255); the "
                                "data is float, fed as it is")
        return contract, {"probed": False, "why": "float inputs are fed as they are"}
    x, labels = x_raw[:PROBE_EXAMPLES], y[:PROBE_EXAMPLES]
    scores = probe_scores(lambda v: model.predict(v, batch_size=256, verbose=0), x, labels,
                          contract, head_kind(model))
    chance = chance_rate(labels)
    chosen = choose(scores, contract.range_text, chance, auto, model_name, len(x))
    return (contract.with_range(*(float(v) for v in chosen.split(","))),
            {"probed": True, "examples": len(x), "chance": chance, "scores": scores,
             "configured": "auto" if auto else contract.range_text, "chosen": chosen})

"""`Recipe`: every knob of a pipeline run with its default, and a hash for caching."""
import dataclasses
import hashlib
import json

from pipeline.errors import PipelineError


@dataclasses.dataclass(frozen=True)
class Recipe:
    # Float baseline. `lr_schedule`: "constant" or "cosine" (decays to 0 over the epochs);
    # `augment`: "none" or "flip_crop" (random horizontal flip + 4-pixel shift, for CIFAR).
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    augment: str = "none"
    # Architecture knobs for builders that have them (MobileNetV2): width multiplier, and the
    # square input size images are resized to (0: the dataset's own size).
    alpha: float = 1.0
    input_size: int = 0
    # A model the user brings is trained already: it is only evaluated, unless this is set,
    # which trains it from freshly initialised weights for `epochs`.
    train_baseline: bool = False
    # Pruning: "magnitude" (unstructured), "m_by_n" (2:4 structured: 2 of every 4 consecutive
    # input weights are zero, which sparse kernels can exploit) or "off".
    pruning: str = "magnitude"
    # Which conv/dense layers to prune: "auto" (all with at least `min_prune_weights`), "all",
    # or names; a name with a leading "-" excludes that layer from the automatic choice.
    prune_layers: str = "auto"
    # Quantization-aware training: "on" (layers tfmot cannot quantize stay float during QAT)
    # or "off" (the pruned float model goes straight to calibrated post-training int8).
    qat: str = "on"
    # Magnitude pruning: sparsity ramps from `initial_sparsity` to `sparsity` over the first
    # `prune_ramp_fraction` of the pruning steps, then the model fine-tunes at the target.
    prune_epochs: int = 4
    sparsity: float = 0.8
    initial_sparsity: float = 0.3
    prune_ramp_fraction: float = 0.6
    prune_learning_rate: float = 5e-4
    # Layers with fewer weights stay dense (a 3x3 stem conv pruned to 80% loses most of its
    # filters for a negligible saving); the others are pruned harder so that `sparsity` is
    # still the fraction of zeros over all conv/dense weights.
    min_prune_weights: int = 1000
    # Dense kernels are pruned in blocks of this many consecutive input weights: one block is
    # one contiguous run in TFLite's [out, in] layout, so zeros come in longer runs and gzip
    # (what an app download costs) shrinks further at the same sparsity.
    prune_block: int = 1
    # Quantization-aware training (sparsity preserving).
    qat_epochs: int = 2
    qat_learning_rate: float = 1e-4
    # Conversion: the modes to produce (int8 always), and the int8 calibration set.
    modes: tuple[str, ...] = ("int8",)
    calibration_samples: int = 500
    # Per-layer error analysis and selective quantization: the largest top-1 drop (points)
    # int8 may cost against the float Keras model before layers are kept in float.
    debug_samples: int = 64
    accuracy_budget: float = 1.0
    max_float_layers: int = 3
    # Knowledge distillation (only with a teacher): loss = alpha * CE + (1 - alpha) * T^2 * KL
    # on the temperature-T softmaxes; `distill_through_compression` keeps that loss in the
    # pruning and QAT fine-tuning; `distill_baseline` also trains the student without the
    # teacher, same recipe, so the gain is measured side by side.
    distill_alpha: float = 0.1
    distill_temperature: float = 4.0
    distill_through_compression: bool = True
    distill_baseline: bool = True
    # Validation and host latency.
    eval_batch_size: int = 256
    latency_min_runs: int = 200
    latency_min_seconds: float = 1.0
    latency_warmup_runs: int = 20
    seed: int = 1234

    def __post_init__(self):
        if not 0.0 <= self.sparsity < 1.0:
            raise PipelineError(f"--sparsity must be in [0, 1), got {self.sparsity}")
        if not 0.0 <= self.initial_sparsity <= self.sparsity:
            raise PipelineError(
                f"initial sparsity {self.initial_sparsity} must be in [0, sparsity={self.sparsity}]")
        if not 0.0 < self.prune_ramp_fraction <= 1.0:
            raise PipelineError(f"prune_ramp_fraction must be in (0, 1], got {self.prune_ramp_fraction}")
        for name in ("epochs", "batch_size", "calibration_samples", "prune_block", "eval_batch_size",
                     "latency_min_runs"):
            if getattr(self, name) < 1:
                raise PipelineError(f"--{name} must be at least 1, got {getattr(self, name)}")
        self._check_choices()
        if not 0.0 <= self.distill_alpha <= 1.0 or self.distill_temperature <= 0:
            raise PipelineError(f"--distill_alpha must be in [0, 1] and --distill_temperature "
                                f"positive, got {self.distill_alpha} and {self.distill_temperature}")
        if self.alpha <= 0 or self.input_size < 0:
            raise PipelineError("--alpha must be positive and --input_size at least 0")
        for name in ("prune_epochs", "qat_epochs", "latency_warmup_runs", "min_prune_weights",
                     "max_float_layers", "debug_samples"):
            if getattr(self, name) < 0:
                raise PipelineError(f"--{name} must not be negative, got {getattr(self, name)}")

    def _check_choices(self):
        for name, allowed in (("lr_schedule", ("constant", "cosine")),
                              ("augment", ("none", "flip_crop")),
                              ("pruning", ("magnitude", "m_by_n", "off")),
                              ("qat", ("on", "off"))):
            if getattr(self, name) not in allowed:
                raise PipelineError(f"--{name} must be one of {', '.join(allowed)}, "
                                    f"got {getattr(self, name)!r}")

    def replace(self, **changes) -> "Recipe":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise PipelineError(f"unknown recipe field(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self, fields: tuple[str, ...] | None = None, extra: dict | None = None) -> str:
        """Hash of the named fields (all when `fields` is None) plus `extra` context."""
        values = self.to_dict()
        chosen = {k: values[k] for k in (values if fields is None else fields)}
        blob = json.dumps({"recipe": chosen, "extra": extra or {}}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

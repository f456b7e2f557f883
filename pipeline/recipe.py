"""`Recipe`: every knob of a pipeline run, grouped in one config section per stage family.

A section is a frozen dataclass registered by name (`@section("prune")`); each field is a
`knob` with its default, help text and, where it has them, choices and a minimum, written
down once: the command line generates its flags from them, and a stage hashes its whole
section(s) plus the seed, so no hand-kept list of "fields this stage depends on" exists.

Knobs are unique across sections, so `Recipe(sparsity=0.9)` and `recipe.sparsity` reach
`recipe.section("prune").sparsity` directly. Errors name the field (`prune.sparsity`); the
command line maps them to its flag (`--sparsity`).
"""
import dataclasses
import hashlib
import json
import types

from pipeline.errors import PipelineError
from pipeline.training import augment

SECTIONS: dict[str, type] = {}
DEFAULT_SEED = 1234


class ConfigError(PipelineError):
    """A bad recipe value; `field` is `section.knob`, `detail` the rest of the sentence."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field} {detail}")
        self.field, self.detail = field, detail

    @property
    def knob(self) -> str:
        return self.field.rpartition(".")[2]


def knob(default, help: str, choices: tuple = (), minimum=None,
         hashed_at_default: bool = True):
    """A section field with what the command line needs to make its flag.
    `hashed_at_default=False`: a knob added later enters the hashes only when set away from
    its default, so the stage records and the files' metadata version of runs that do not
    use it stay what they were."""
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": tuple(choices), "minimum": minimum,
        "hashed_at_default": hashed_at_default})


def section(name: str):
    """Registers a config section class under `name`; its fields are checked on creation."""
    def register(cls):
        cls = dataclasses.dataclass(frozen=True)(cls)
        cls.NAME = name
        SECTIONS[name] = cls
        return cls
    return register


class Section:
    """Base of every config section: generic checks from the knobs' choices and minimums."""
    NAME = ""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                self.fail(f.name, f"must be one of {', '.join(map(str, meta['choices']))}, "
                                  f"got {value!r}")
            if meta.get("minimum") is not None and value < meta["minimum"]:
                self.fail(f.name, f"must be at least {meta['minimum']}, got {value}"
                          if meta["minimum"] else f"must not be negative, got {value}")
        self.check()

    def check(self) -> None:
        """Checks that involve more than one knob or a range; sections override it."""

    def fail(self, name: str, detail: str):
        raise ConfigError(f"{self.NAME}.{name}", detail)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def hash_dict(self) -> dict:
        """`to_dict` less the later knobs left at their default (see `knob`)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata.get("hashed_at_default", True) or getattr(self, f.name) != f.default}


def owners() -> dict[str, str]:
    """knob name -> the section that owns it."""
    owner = {}
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.name in owner or f.name == "seed":
                raise ValueError(f"knob {f.name!r} defined twice ({owner.get(f.name)}, {name})")
            owner[f.name] = name
    return owner


class Recipe:
    """One value per registered section, plus the seed. Immutable; `replace` makes a copy."""

    __slots__ = ("_sections", "seed")

    def __init__(self, seed: int = DEFAULT_SEED, sections: dict | None = None, **knobs):
        chosen = {name: cls() for name, cls in SECTIONS.items()}
        chosen.update(sections or {})
        owner = owners()
        unknown = sorted(set(knobs) - set(owner))
        if unknown:
            raise PipelineError(f"unknown recipe field(s): {', '.join(unknown)}")
        changes: dict[str, dict] = {}
        for name, value in knobs.items():
            changes.setdefault(owner[name], {})[name] = value
        for name, fields in changes.items():
            chosen[name] = dataclasses.replace(chosen[name], **fields)
        object.__setattr__(self, "_sections", types.MappingProxyType(chosen))
        object.__setattr__(self, "seed", seed)

    def __setattr__(self, name, value):
        raise AttributeError("Recipe is immutable: use recipe.replace(...)")

    def __getattr__(self, name):
        owner = owners().get(name)
        if owner is None:
            raise AttributeError(f"Recipe has no knob {name!r}")
        return getattr(self.section(owner), name)

    def __eq__(self, other):
        return isinstance(other, Recipe) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.hash())

    def __repr__(self):
        return f"Recipe({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def section(self, name: str):
        if name not in self._sections:
            raise PipelineError(f"no recipe section {name!r}; known: {', '.join(self._sections)}")
        return self._sections[name]

    @property
    def sections(self) -> dict:
        return dict(self._sections)

    def replace(self, seed: int | None = None, **knobs) -> "Recipe":
        return Recipe(self.seed if seed is None else seed, dict(self._sections), **knobs)

    def with_section(self, value) -> "Recipe":
        """A copy with `value` (a section instance, possibly of a newly registered class)."""
        return Recipe(self.seed, {**self._sections, value.NAME: value})

    def to_dict(self) -> dict:
        """Every knob by name, and the seed: the flat form the report records."""
        flat = {}
        for value in self._sections.values():
            flat.update(value.to_dict())
        return {**flat, "seed": self.seed}

    def hash(self, sections: tuple[str, ...] | None = None, extra: dict | None = None) -> str:
        """Hash of the named sections (all when None) and the seed, plus `extra` context."""
        names = self._sections if sections is None else sections
        chosen = {name: Recipe.section(self, name).hash_dict() for name in sorted(names)}
        blob = json.dumps({"sections": chosen, "seed": self.seed, "extra": extra or {}},
                          sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@section("train")
class TrainConfig(Section):
    """The float baseline (and a distilled student): trained from scratch or, for a model the
    user brings, only evaluated."""
    epochs: int = knob(5, "Baseline training epochs.", minimum=1)
    batch_size: int = knob(64, "Training batch size of every training stage.", minimum=1)
    learning_rate: float = knob(1e-3, "Baseline learning rate.")
    lr_schedule: str = knob("constant", "Baseline learning-rate schedule (cosine decays to 0 "
                            "over the epochs).", choices=("constant", "cosine"))
    optimizer: str = knob("adam", "Baseline optimizer: adam, or sgd (Nesterov momentum 0.9).",
                          choices=("adam", "sgd"))
    label_smoothing: float = knob(0.0, "Baseline label smoothing (classification): the target "
                                  "puts this much probability evenly on all classes.")
    augment: str = knob("none", "Baseline training augmentation (flip_crop: random horizontal "
                        "flip + 4-pixel shift, for CIFAR images; time_mask: spans of frames "
                        "set to their mean, for MFCCs).", choices=augment.NAMES)
    alpha: float = knob(1.0, "Width multiplier of models that have one (mobilenet_v2).")
    input_size: int = knob(0, "Square input size images are resized to (mobilenet_v2; 0: "
                           "native).", minimum=0)
    train_baseline: bool = knob(False, "Train your own (already trained) model again from "
                                "fresh weights instead of only evaluating it.")

    def check(self):
        if self.alpha <= 0:
            self.fail("alpha", f"must be positive, got {self.alpha}")
        if not 0 <= self.label_smoothing < 1:
            self.fail("label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")


@section("input")
class InputConfig(Section):
    """The input contract (how raw inputs become what the model expects) and the validation
    split. No stage hashes it: the data's own hash changes with it."""
    input_kind: str = knob("auto", "What the model takes: image (pixels, mapped by "
                           "--input_range/--input_mean/--input_std), tokens (integer ids, fed "
                           "as int32), audio (a waveform or its front end's features), "
                           "features (floats as they are), or auto (from the model's input "
                           "dtype and the data).", choices=("auto", "image", "tokens", "audio",
                                                            "features"),
                           hashed_at_default=False)
    vocab: str = knob("", "Token-id models: vocab.txt (one token per line, line number = id) "
                      "of the tokenizer that made the ids; it ships in the sidecar and the "
                      "TFLite metadata (MediaPipe's RegexTokenizer) so an app passes text.",
                      hashed_at_default=False)
    token_regex: str = knob(r"[^\w']+", "Token-id models: the regex that splits text into "
                            "words (with --vocab).", hashed_at_default=False)
    input_range: str = knob("0,1", "What integer pixel values 0..255 become: LOW,HIGH (0,1; "
                            "0,255; -1,1), or auto (the sanity probe picks the range under "
                            "which your trained model scores best).")
    input_mean: str = knob("", "Per-channel mean subtracted after the range (comma separated).")
    input_std: str = knob("", "Per-channel standard deviation divided by after the mean.")
    task: str = knob("auto", "classification (top-1 on class ids), fidelity (label-free: the "
                     "model fine-tunes to match its own float outputs, scored by SQNR), or "
                     "auto (fidelity when the targets are not class ids or are missing).",
                     choices=("auto", "classification", "fidelity"))
    validation_split: float = knob(0.1, "Fraction of the training examples held out (seeded, "
                                   "stratified by class) as the validation split every "
                                   "decision reads (search, fallback, budget, deliverable); "
                                   "ignored when the data has its own x_val/y_val. The test "
                                   "split is only reported.", hashed_at_default=False)

    def check(self):
        if not 0.0 < self.validation_split < 1.0:
            self.fail("validation_split", f"must be in (0, 1), got {self.validation_split}")
        from pipeline import contract
        for name, parse in (("input_range", lambda: self.input_range.strip() == "auto" or
                             contract.parse_range(self.input_range)),
                            ("input_mean", lambda: contract.parse_floats(self.input_mean,
                                                                         "input_mean")),
                            ("input_std", lambda: contract.parse_stds(self.input_std)),
                            ("input_std", lambda: contract.check_channels(
                                self.input_mean, self.input_std))):
            try:
                parse()
            except PipelineError as e:
                self.fail(name, str(e).partition(" ")[2])


@section("distill")
class DistillConfig(Section):
    """Knowledge distillation, from a teacher or (self_distill) from the float model itself
    during compression: loss = alpha * CE + (1 - alpha) * T^2 * KL."""
    distill_alpha: float = knob(0.1, "Weight of the hard-label cross-entropy in the "
                                "distillation loss; the teacher's soft targets get 1 - alpha.")
    distill_temperature: float = knob(4.0, "Softmax temperature of the distillation loss.")
    distill_through_compression: bool = knob(True, "Pruning and QAT fine-tuning keep learning "
                                             "from the teacher.")
    self_distill: bool = knob(False, "Without a teacher (classification): pruning, clustering "
                              "and QAT learn from a frozen copy of the float model, with "
                              "--distill_alpha and --distill_temperature.")

    def check(self):
        if not 0.0 <= self.distill_alpha <= 1.0:
            self.fail("distill_alpha", f"must be in [0, 1], got {self.distill_alpha}")
        if self.distill_temperature <= 0:
            self.fail("distill_temperature", f"must be positive, got {self.distill_temperature}")


@section("distribute")
class DistributeConfig(Section):
    """How training stages spread over devices and machines (tf.distribute)."""
    strategy: str = knob("auto", "one_device, mirrored (the local GPUs, or the CPU), "
                         "multi_worker (MultiWorkerMirroredStrategy from TF_CONFIG), or auto "
                         "(multi_worker when TF_CONFIG names several workers).",
                         choices=("auto", "one_device", "mirrored", "multi_worker"))


@section("prune")
class PruneConfig(Section):
    """Magnitude pruning with tfmot; sparsity ramps from `initial_sparsity` to `sparsity` over
    the first `prune_ramp_fraction` of the steps, then the masks stay fixed."""
    pruning: str = knob("magnitude", "magnitude (unstructured), m_by_n (2:4 structured) or off.",
                        choices=("magnitude", "m_by_n", "off"))
    prune_layers: str = knob("auto", "auto (layers with >= --min_prune_weights), all, or layer "
                             "names; -name excludes a layer from auto.")
    prune_epochs: int = knob(4, "Pruning fine-tune epochs.", minimum=0)
    sparsity: float = knob(0.8, "Target weight sparsity over all conv/dense weights.")
    initial_sparsity: float = knob(0.3, "Sparsity at the start of the pruning ramp.")
    prune_ramp_fraction: float = knob(0.6, "Fraction of the pruning steps the ramp takes.")
    prune_learning_rate: float = knob(5e-4, "Pruning fine-tune learning rate.")
    # A 3x3 stem conv pruned to 80% loses most of its filters for a negligible saving; the
    # others are pruned harder so that `sparsity` still counts every conv/dense weight.
    min_prune_weights: int = knob(1000, "Conv/dense layers with fewer weights stay dense.",
                                  minimum=0)
    # One block is one contiguous run in TFLite's [out, in] layout: longer zero runs, smaller gzip.
    prune_block: int = knob(1, "Prune dense kernels in blocks of this many consecutive inputs "
                            "(gzips smaller).", minimum=1)

    def check(self):
        if not 0.0 <= self.sparsity < 1.0:
            self.fail("sparsity", f"must be in [0, 1), got {self.sparsity}")
        if not 0.0 <= self.initial_sparsity <= self.sparsity:
            self.fail("initial_sparsity", f"must be in [0, sparsity={self.sparsity}], got "
                                          f"{self.initial_sparsity}")
        if not 0.0 < self.prune_ramp_fraction <= 1.0:
            self.fail("prune_ramp_fraction", f"must be in (0, 1], got {self.prune_ramp_fraction}")


@section("cluster")
class ClusterConfig(Section):
    """Weight clustering (k-means, non-uniform quantization) after pruning, zeros kept."""
    clusters: int = knob(0, "Weight clusters per kernel (per channel for convolutions with "
                         "--cluster_per_channel); 0: no clustering.", minimum=0)
    cluster_per_channel: bool = knob(True, "Cluster each output channel of a Conv2D on its "
                                     "own (int8 quantizes convolutions per channel); off: one "
                                     "set of values per kernel, BatchNorm folded in first, one "
                                     "int8 scale per kernel (the codes repeat across channels: "
                                     "smaller gzip).")
    cluster_layers: str = knob("auto", "Layers to cluster: auto (the layers pruning takes, "
                               "--prune_layers), all (every kernel k-means can fit: the small "
                               "stem and classifier too), or names as in --prune_layers.")
    cluster_epochs: int = knob(1, "Clustering fine-tune epochs.", minimum=0)
    cluster_learning_rate: float = knob(1e-4, "Clustering fine-tune learning rate.")

    def check(self):
        if self.clusters == 1:
            self.fail("clusters", "must be 0 (off) or at least 2, got 1")


@section("qat")
class QatConfig(Section):
    """Quantization-aware training that keeps the pruned zeros."""
    qat: str = knob("on", "on (layers tfmot cannot quantize stay float) or off (calibrated "
                    "post-training int8 of the pruned model).", choices=("on", "off"))
    qat_epochs: int = knob(2, "Quantization-aware training epochs.", minimum=0)
    qat_learning_rate: float = knob(1e-4, "Quantization-aware training learning rate.")


@section("convert")
class ConvertConfig(Section):
    """What every calibrated conversion depends on: the representative dataset."""
    calibration_samples: int = knob(500, "Training examples in the int8 converter's "
                                    "representative dataset.", minimum=1)


@section("metadata")
class MetadataConfig(Section):
    """TFLite metadata written into every deployable image classifier (MediaPipe Tasks reads
    it): class labels, and how pixels become the model's input."""
    labels: str = knob("", "labels.txt with one class name per line, in class order (default: "
                       "the dataset's own names where known, else the class indices).")


@section("outputs")
class OutputsConfig(Section):
    """Which files a run produces: these shape the stage list; no stage hashes them."""
    modes: tuple = knob(("int8",), "TFLite modes to produce, each validated: int8 (always), "
                        "uint8, int8_float_io, dynamic, float16, int16x8.")
    distill_baseline: bool = knob(True, "With a teacher, also train the student without it, "
                                  "same recipe, to measure the gain side by side.")

    def check(self):
        from pipeline.stages import modes
        object.__setattr__(self, "modes", modes.parse(",".join(self.modes)))


@section("debug")
class DebugConfig(Section):
    """Per-layer int8 error analysis (TFLite's QuantizationDebugger)."""
    debug_samples: int = knob(64, "Calibration samples the per-layer error analysis runs on "
                              "(0: no analysis, and so no float fallback).", minimum=0)


@section("fallback")
class FallbackConfig(Section):
    """The float fallback: when int8 misses the budget, the worst layers stay float."""
    accuracy_budget: float = knob(1.0, "Largest top-1 drop (points) int8 may cost vs the float "
                                  "Keras model before layers are kept float.")
    max_float_layers: int = knob(3, "Most layers the float fallback may keep in float.",
                                 minimum=0)
    min_sqnr_db: float = knob(20.0, "Label-free runs without a metric of yours: the least "
                              "SQNR (dB) of a file's outputs against the float model's.")


@section("validate")
class ValidateConfig(Section):
    """Accuracy of every `.tflite` on the whole test split."""
    eval_batch_size: int = knob(256, "Batch size of the accuracy evaluation.", minimum=1)


@section("latency")
class LatencyConfig(Section):
    """Host latency: batch 1, 1 thread, every file of a run timed interleaved."""
    latency_min_runs: int = knob(200, "Least invokes per file.", minimum=1)
    latency_min_seconds: float = knob(1.0, "Seconds of timing per file.")
    latency_warmup_runs: int = knob(20, "Untimed invokes per file first.", minimum=0)


@section("search")
class SearchConfig(Section):
    """`--search`: the most compressed int8 model within --accuracy_budget of the float model,
    over sparsity x clusters; each candidate a short fine-tune, cached in <out>/search/."""
    search: bool = knob(False, "Search sparsity and clusters for the most compressed int8 "
                        "model within --accuracy_budget (replaces --sparsity/--clusters).")
    objective: str = knob("gzip_bytes", "What the search minimizes among the candidates that "
                          "meet the budget.", choices=("gzip_bytes", "bytes", "latency"))
    search_min_sparsity: float = knob(0.5, "Lowest sparsity the search tries.")
    search_max_sparsity: float = knob(0.95, "Highest sparsity the search tries.")
    search_sparsity_step: float = knob(0.05, "Spacing of the search's sparsity grid.")
    search_clusters: tuple = knob(("off", "64", "32", "16", "8"), "Cluster counts the search "
                                  "tries, in this order (off: no clustering).")
    search_epochs: int = knob(1, "Fine-tune epochs of each candidate's pruning, clustering and "
                              "QAT (each).", minimum=1)
    search_cluster_epochs: int = knob(0, "Clustering fine-tune epochs of each clustered "
                                      "candidate (0: --search_epochs): few shared values lose "
                                      "more than pruning and need longer to recover.",
                                      minimum=0)
    # Per-step overhead dominates small networks: a larger batch makes clustering and QAT
    # several times faster at no measured loss; the pruning ladder keeps --batch_size.
    search_batch_size: int = knob(128, "Batch size of each candidate's clustering and QAT "
                                  "fine-tunes (0: --batch_size).", minimum=0)
    search_abandon_points: float = knob(1.0, "A candidate whose Keras accuracy after pruning or "
                                        "clustering is more than this many points beyond the "
                                        "budget skips QAT (hopeless).", minimum=0.0)
    search_max_candidates: int = knob(16, "Most candidates the search fine-tunes.", minimum=1)

    def check(self):
        if not 0.0 <= self.search_min_sparsity <= self.search_max_sparsity < 1.0:
            self.fail("search_min_sparsity", f"and search_max_sparsity must satisfy 0 <= min "
                      f"<= max < 1, got {self.search_min_sparsity}, {self.search_max_sparsity}")
        if self.search_sparsity_step <= 0:
            self.fail("search_sparsity_step", f"must be positive, got {self.search_sparsity_step}")
        counts = tuple(str(c).strip().lower() for c in self.search_clusters if str(c).strip())
        bad = [c for c in counts if c != "off" and not (c.isdigit() and int(c) >= 2)]
        if bad or not counts:
            self.fail("search_clusters", f"must be a list of 'off' and counts >= 2, got "
                      f"{', '.join(map(str, self.search_clusters)) or 'nothing'}")
        object.__setattr__(self, "search_clusters", counts)


class ReadRecorder(Recipe):
    """A recipe that notes which sections are read through it (the runner hands one to each
    stage, so a test can check every stage reads only the sections it hashes). Copies made
    by `replace` note into the same set. `hash()` of the whole recipe (the files' metadata
    version) is not a read of every knob."""

    __slots__ = ("reads",)

    def __init__(self, recipe: Recipe, reads: set | None = None):
        super().__init__(recipe.seed, recipe.sections)
        object.__setattr__(self, "reads", set() if reads is None else reads)

    def section(self, name: str):
        self.reads.add(name)
        return super().section(name)

    def replace(self, seed: int | None = None, **knobs) -> "Recipe":
        return ReadRecorder(super().replace(seed, **knobs), self.reads)

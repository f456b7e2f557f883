"""`kws`: keyword spotting from raw audio, the MLPerf Tiny DS-CNN on MFCCs of Speech Commands.

Data: `speech_commands.npz` from `--data_dir` (see ../shared/data/README.md): 4,107 training
and 783 test one-second clips at 16 kHz, split by speaker, 12 classes (`labels`: _silence_,
_unknown_, yes, no, up, down, left, right, on, off, stop, go), stored as mu-law codes.

The model takes the 49 x 10 x 1 MFCCs of `pipeline/audio/frontend.py` (the MLPerf Tiny
front end; the entry's input spec describes it, so the app can reproduce it). The
training split is small (about 340 clips a class), so the loader augments the waveforms
before the front end, as the MLPerf reference does at training time (time shift up to
+-100 ms, background noise in 80% of the copies at a volume up to 0.1) plus a random
foreground volume; here the noise is the training split's own `_silence_` clips. The copies
are drawn once with a fixed seed and turned into features, so the ordinary train, prune and
QAT stages work on feature arrays and a resumed run sees the same data. The test split is
the clean clips.
"""
import dataclasses
import functools
import os

import numpy as np

from models import ds_cnn
from models.registry import ZooEntry, register
from pipeline.audio import frontend
from pipeline.data import Dataset, from_arrays, load_npz
from pipeline.errors import PipelineError
from pipeline import variants
from pipeline.input_spec import AudioSpec
from pipeline.recipe import Recipe

DATA_FILE = "speech_commands.npz"
SILENCE = 0  # Index of `_silence_` in `labels`: its clips are the background noise.
SEED = 0
# Real training clips the waveform file is calibrated with (its front end stays float).
WAVEFORM_CALIBRATION_CLIPS = 200
COPIES = 10  # Training features per clip: the clean clip and COPIES - 1 augmented ones.
SHIFT_SAMPLES = 1600  # +-100 ms
NOISE_FREQUENCY = 0.8
NOISE_VOLUME = 0.1
VOLUME_RANGE = (0.5, 1.0)  # Foreground volume: changes the speech-to-noise ratio only.
VALIDATION_SPEAKERS = 0.1


@dataclasses.dataclass(frozen=True)
class LabelledDataset(Dataset):
    """A Dataset that knows its class names (reports, labels.txt, TFLite metadata) and the
    waveforms its features come from (`waveforms[split]`: calibration, validation, test),
    which the waveform file takes."""
    labels: tuple = ()
    waveforms: dict | None = None


def shift(waveforms: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Each clip moved by its offset in samples (positive: later), the gap zero-filled."""
    n = waveforms.shape[1]
    padded = np.pad(waveforms, ((0, 0), (SHIFT_SAMPLES, SHIFT_SAMPLES)))
    index = SHIFT_SAMPLES - offsets[:, None] + np.arange(n)[None, :]
    return np.take_along_axis(padded, index, axis=1)


def augment(waveforms: np.ndarray, noise: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of every clip: peak-scaled, random volume, shifted, plus a random
    noise clip (itself peak-scaled) at a random volume in 80% of the clips, clipped to -1..1."""
    count = len(waveforms)
    x = frontend.peak_normalize(waveforms)
    x = x * rng.uniform(*VOLUME_RANGE, size=(count, 1)).astype(np.float32)
    x = shift(x, rng.integers(-SHIFT_SAMPLES, SHIFT_SAMPLES + 1, size=count))
    picks = rng.integers(0, len(noise), size=count)
    volume = rng.uniform(0, NOISE_VOLUME, size=(count, 1)) * (
        rng.uniform(size=(count, 1)) < NOISE_FREQUENCY)
    x = x + frontend.peak_normalize(noise[picks]) * volume.astype(np.float32)
    return np.clip(x, -1.0, 1.0)


def augmented_features(waveforms: np.ndarray, labels: np.ndarray, copies: int,
                       seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of the clean clips and `copies - 1` augmented copies of each."""
    rng = np.random.default_rng(seed)
    noise = waveforms[labels == SILENCE]
    if len(noise) == 0:
        raise PipelineError("kws augmentation mixes in the _silence_ clips as background "
                            "noise; the training split has none")
    x = [frontend.features(waveforms)]
    for _ in range(copies - 1):
        x.append(frontend.features(augment(waveforms, noise, rng)))
    return np.concatenate(x), np.tile(labels, copies)


def read_waveforms(data_dir: str | None) -> dict:
    """The decoded clips: x_train / x_test as N x 16000 float32, y_*, labels."""
    path = os.path.join(data_dir, DATA_FILE) if data_dir else None
    if path is None or not os.path.isfile(path):
        where = f"{path} does not exist" if path else "no --data_dir given"
        raise PipelineError(f"kws needs {DATA_FILE} ({where}): pass --data_dir=DIR holding it "
                            f"(e.g. --data_dir=../shared/data)")
    arrays = load_npz(path)
    if arrays["x_train"].ndim != 2 or arrays["x_train"].shape[1] != frontend.CLIP_SAMPLES:
        raise PipelineError(f"{path}: x_train is {arrays['x_train'].shape}; kws takes "
                            f"N x {frontend.CLIP_SAMPLES} mu-law codes (1 s at 16 kHz)")
    with np.load(path) as npz:
        labels = tuple(str(name) for name in npz["labels"]) if "labels" in npz.files else ()
        speakers = npz["speaker_train"] if "speaker_train" in npz.files else None
    return {"x_train": frontend.decode_mulaw(arrays["x_train"]), "y_train": arrays["y_train"],
            "x_test": frontend.decode_mulaw(arrays["x_test"]), "y_test": arrays["y_test"],
            "labels": labels, "speaker_train": speakers}


def validation_rows(speakers: np.ndarray | None, count: int, seed: int = SEED) -> np.ndarray:
    """Sorted training rows of VALIDATION_SPEAKERS of the speakers (seeded), so that no
    speaker is on both sides; without speaker ids, that fraction of the rows."""
    rng = np.random.default_rng(seed)
    if speakers is None:
        return np.sort(rng.choice(count, int(count * VALIDATION_SPEAKERS), replace=False))
    names = np.unique(speakers)
    held = rng.choice(names, max(1, int(len(names) * VALIDATION_SPEAKERS)), replace=False)
    return np.flatnonzero(np.isin(speakers, held))


def load_data(data_dir: str | None = None, copies: int = COPIES) -> Dataset:
    """Augmented training features and clean test features (cached per process: the
    features of 38k clips take one to three minutes)."""
    path = os.path.abspath(os.path.join(data_dir, DATA_FILE)) if data_dir else None
    stamp = os.stat(path).st_mtime_ns if path and os.path.isfile(path) else 0
    return _load(data_dir, copies, stamp)


@functools.lru_cache(maxsize=2)
def _load(data_dir: str | None, copies: int, stamp: int) -> Dataset:
    clips = read_waveforms(data_dir)
    held = validation_rows(clips["speaker_train"], len(clips["x_train"]))
    train = np.setdiff1d(np.arange(len(clips["x_train"])), held)
    y = np.asarray(clips["y_train"])
    x_train, y_train = augmented_features(clips["x_train"][train], y[train], copies)
    dataset = from_arrays("speech_commands", {
        "x_train": x_train, "y_train": y_train,
        "x_test": frontend.features(clips["x_test"]), "y_test": clips["y_test"]},
        num_classes=len(clips["labels"]) or None)
    x_val = frontend.features(clips["x_train"][held])
    for array in (dataset.x_train, dataset.x_test, x_val):
        array.flags.writeable = False  # Shared between callers through the cache.
    return LabelledDataset(
        **{f.name: getattr(dataset, f.name) for f in dataclasses.fields(dataset)
           if f.name not in ("x_val", "y_val", "validation")},
        x_val=x_val, y_val=y[held].astype(dataset.y_train.dtype),
        validation=f"the clean clips of {VALIDATION_SPEAKERS:.0%} of the training speakers "
                   f"({len(held)} clips, seed {SEED}; none augmented or trained on)",
        labels=clips["labels"], waveforms=waveform_splits(clips, train, held))


def waveform_splits(clips: dict, train: np.ndarray, held: np.ndarray) -> dict:
    """The clean clips behind each split the waveform file is calibrated and scored on."""
    pick = np.random.default_rng(SEED).choice(train, WAVEFORM_CALIBRATION_CLIPS, replace=False)
    return {"calibration": clips["x_train"][np.sort(pick)], "validation": clips["x_train"][held],
            "test": clips["x_test"]}


def waveform_inputs(dataset, split: str) -> np.ndarray:
    return dataset.waveforms[split]


def waveform_convert(model, calibration, batch_size):
    from pipeline.audio import waveform
    return waveform.convert(model, calibration)


def has_waveforms(ctx) -> bool:
    return getattr(ctx.dataset, "waveforms", None) is not None


# The second deliverable: one file that takes 1 s of raw audio (front end inside, float;
# the network int8), validated and timed on the same clips as the features file.
variants.register(variants.Variant(
    "waveform_int8", "model_waveform_int8.tflite", ("quantized", "compressed"),
    waveform_convert, calibrated=True, integer_only=False, when=has_waveforms,
    inputs=waveform_inputs,
    note="float32 [1, 16000] waveform in: the MFCC front end inside in float, the DS-CNN "
         "in int8; MediaPipe's AudioClassifier reads its audio metadata"))


def build(dataset: Dataset):
    """The MLPerf Tiny DS-CNN (models/ds_cnn.py) on the 49 x 10 x 1 MFCCs."""
    return ds_cnn.build(dataset)


ENTRY = register(ZooEntry(
    name="kws",
    description="keyword spotting: MLPerf Tiny DS-CNN on MFCCs of Speech Commands "
                "(12 classes, waveforms augmented)",
    build=build,
    load_data=load_data,
    contract=AudioSpec(sample_rate=frontend.SAMPLE_RATE, clip_samples=frontend.CLIP_SAMPLES,
                       frontend=frontend.PARAMETERS),
    # One epoch is 38,180 feature rows (10 copies of the 3,818 clips left after validation).
    # 24 epochs with label smoothing 0.1: 89.14% float on the test split, 93.43% validation
    # (without: 87.87% / 92.04%). Then 20% sparsity (ramp from 10%) and 32 clusters per
    # tensor (BatchNorm folded, one scale per tensor: the int8 codes repeat across channels,
    # so gzip codes the weights in under 5 bits), chosen on validation among eight pruning
    # and clustering candidates on the same float model: the highest int8 validation score
    # (94.12%, tied with 10% sparsity and with no pruning) among those at least 4x smaller
    # gzip than the float file, the smaller file winning the tie, as in the deliverable rule
    # (no pruning: 3.98x; 10%: 4.04x; 20%: 4.15x; 30%, the recipe before: 93.08%)
    # (benchmarks/results/kws-recipe-candidates-2026-12-07.md). Tried, not kept: standardized
    # MFCCs, 60% sparsity, time masking, 40 epochs, 16 clusters, clusters per channel
    # (docs/speech.md). Pruning and QAT epochs are long: 3 and 2 epochs are 115k and 76k
    # rows.
    recipe=Recipe(epochs=24, batch_size=100, learning_rate=2e-3, lr_schedule="cosine",
                  label_smoothing=0.1, prune_epochs=3, sparsity=0.2, initial_sparsity=0.1,
                  prune_learning_rate=2e-4, clusters=32, cluster_per_channel=False,
                  qat_epochs=2, qat_learning_rate=5e-5),
))

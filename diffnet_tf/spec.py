"""What a run is: one immutable, complete description of the data, the network and the
optimisation, stored with the run as spec.json and hashed into its folder's name.

    spec = protocol("perona_malik").replace(data={"source": "synthetic", "noise": 0.01})
    spec.folder_name      # 'diffnet_pm_inverse_synthetic_noise0.01_n90000-3f2a9c01be'

Everything that changes a run's numbers is a field here, so two runs with equal specs are
the same run and two different specs never share a folder (docs/DESIGN.md, "What a run
is"). Fields that a choice makes irrelevant are None (the U-Net has no estimator depth, the
heat equation no Perona-Malik lambda), so they cannot tell equal runs apart. The paper's
protocols are `protocol(name)` for the names in `protocols.PROTOCOLS`.
"""

import dataclasses
import hashlib
import json

from diffnet_tf import losses, problems, protocols
from diffnet_tf.checks import (
    BOUNDARIES,
    CHANNEL_MIXINGS,
    check_choice,
    check_integer,
    check_number,
)
from diffnet_tf.precision import PRECISIONS

SPEC_FORMAT = 1  # bump when a field's meaning changes
SOURCES = ("synthetic", "stl10", "discs", "folder")
# DataSpec fields of the folder source, left out of a spec without one: its digest (and
# folder name) stays what it was before the source existed
_FOLDER_FIELDS = ("images", "images_digest")
VALIDATION = ("test_head", "train_tail")
MODELS = ("diffnet", "unet")
CHANNELS = (1, 3)


def _field(spec, name):
    """A field's name in messages, e.g. 'DataSpec.noise'."""
    return f"{type(spec).__name__}.{name}"


def _integer(spec, name, minimum, optional=False):
    value = getattr(spec, name)
    if not (value is None and optional):
        check_integer(value, _field(spec, name), minimum)


def _number(spec, name, positive=False, maximum=None):
    """Checks a finite float field (> 0 if `positive`, else >= 0; <= `maximum` where given)
    and stores it as a float."""
    value = check_number(getattr(spec, name), _field(spec, name), minimum=0, positive=positive,
                         maximum=maximum)
    object.__setattr__(spec, name, value)  # 0 and 0.0 hash alike


def _choice(spec, name, choices, optional=False):
    value = getattr(spec, name)
    if not (value is None and optional):
        check_choice(value, choices, _field(spec, name))


def _unused(spec, names, reason):
    """Raises unless every field in `names` is None (it does not apply)."""
    for name in names:
        if getattr(spec, name) is not None:
            raise ValueError(f"Expected {type(spec).__name__}.{name} to be None ({reason}). "
                             f"Received {getattr(spec, name)!r}.")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """The data of a run: images, split sizes, physics and noise.

    Attributes:
        problem: a name in `problems.PROBLEMS` ('pm_inverse', 'pm_forward', 'heat_inverse').
        source: 'synthetic' (embedded dead leaves), 'stl10' (Sect. 5.2), 'discs' (5.1) or
            'folder' (your own images: `image_folder`).
        image_size: the square images' side (STL-10: 96).
        train_size: training images, the first of the train split.
        val_size: validation images (monitoring, early stopping).
        test_size: test images, the first of the test split.
        channels: 1 (grey) or 3 (colour).
        validation: 'test_head' (the first val_size test images; for monitoring only) or
            'train_tail' (the val_size train images after the training set; for early
            stopping, which must not see the test set).
        noise: noise level, sigma = noise x the image maximum (0.01 = 1 %), at most
            `protocols.MAX_NOISE` (1).
        seed: seed of the generated images and of the noise.
        pm_steps, pm_dt, pm_lambda, pm_convention, pm_diffusivity, pm_coupling: the
            Perona-Malik data (`physics.perona_malik`); pm_coupling only for channels > 1.
        heat_time: the heat equation's time T (`physics.heat`).
        heat_solver: the heat solver of the data, a name in `problems.HEAT_SOLVERS`
            ('exact', 'explicit', 'implicit'); None for a heat problem reads as 'exact'
            (specs written before the field existed).
        max_discs: the most discs per image (source 'discs' only).
        images: the folder of images (source 'folder' only), an absolute path.
        images_digest: `image_folder.folder_digest` of that folder (source 'folder' only):
            the folder's content, in the pair cache's key.
    """

    problem: str
    source: str
    image_size: int
    train_size: int
    val_size: int
    test_size: int
    channels: int = 1
    validation: str = "test_head"
    noise: float = 0.0
    seed: int = 0
    pm_steps: int = None
    pm_dt: float = None
    pm_lambda: float = None
    pm_convention: str = None
    pm_diffusivity: str = None
    pm_coupling: str = None
    heat_time: float = None
    heat_solver: str = None
    max_discs: int = None
    images: str = None
    images_digest: str = None

    def __post_init__(self):
        physics = problems.get(self.problem).physics
        _choice(self, "source", SOURCES)
        _integer(self, "image_size", 8)
        if self.source == "stl10" and self.image_size != protocols.STL10_SIDE:
            raise ValueError(f"Expected DataSpec.image_size {protocols.STL10_SIDE} for STL-10 "
                             f"({protocols.STL10_SIDE}x{protocols.STL10_SIDE}). Received "
                             f"{self.image_size}.")
        _choice(self, "channels", CHANNELS)
        if self.source == "discs" and self.channels != 1:
            raise ValueError(f"Expected DataSpec.channels 1 for the discs. Received {self.channels}.")
        for name in ("train_size", "val_size", "test_size"):
            _integer(self, name, 1)
        _choice(self, "validation", VALIDATION)
        self._check_split_sizes()
        _number(self, "noise", maximum=protocols.MAX_NOISE)
        _integer(self, "seed", 0)
        _integer(self, "pm_steps", 0, optional=True)
        for name, positive in (("pm_dt", True), ("pm_lambda", True), ("heat_time", False)):
            if getattr(self, name) is not None:
                _number(self, name, positive)
        if physics is problems.HEAT and self.heat_solver is None:
            object.__setattr__(self, "heat_solver", protocols.HEAT_SOLVER)
        unused = [f for f in problems.PHYSICS_FIELDS if f not in physics.fields]
        if physics is problems.PERONA_MALIK and self.channels == 1:
            unused.append("pm_coupling")
        _unused(self, unused, f"problem {self.problem!r} uses {physics.name} physics")
        physics.check(self)
        if self.source == "discs":
            _integer(self, "max_discs", 1)
        else:
            _unused(self, ["max_discs"], f"source {self.source!r} has no discs")
        self._check_folder_fields()

    def _check_folder_fields(self):
        """A 'folder' source names its folder and digest; the other sources neither."""
        if self.source != "folder":
            _unused(self, _FOLDER_FIELDS, f"source {self.source!r} reads no folder")
            return
        for name in _FOLDER_FIELDS:
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"Expected DataSpec.{name} for source 'folder' (a folder of "
                                 f"images and its digest). Received {getattr(self, name)!r}.")

    def _check_split_sizes(self):
        """The sizes fit the 90 % / 10 % train / test splits of the pool; 'test_head'
        validation images are among the test images."""
        if self.validation == "test_head" and self.val_size > self.test_size:
            raise ValueError(f"Expected DataSpec.val_size <= test_size: validation "
                             f"'test_head' is the first test images. Received val_size="
                             f"{self.val_size}, test_size={self.test_size}.")
        train = self.train_size + (self.val_size if self.validation == "train_tail" else 0)
        if train > protocols.TRAIN_IMAGES or self.test_size > protocols.TEST_IMAGES:
            raise ValueError(
                f"Expected at most {protocols.TRAIN_IMAGES:,} training images (with validation "
                f"{self.validation!r}: train_size{' + val_size' * (self.validation == 'train_tail')})"
                f" and at most {protocols.TEST_IMAGES:,} test images. Received train_size="
                f"{self.train_size}, val_size={self.val_size}, test_size={self.test_size}.")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The network: DiffNet's arguments, or the U-Net's.

    Attributes:
        kind: 'diffnet' or 'unet'.
        num_layers, estimator_depth, width, boundary, dt_init: DiffNet's
            (`models.DiffNet`); None for the U-Net.
        channel_mixing: DiffNet on colour images: 'none' or 'full'; None for grey images.
        unet_filters, unet_levels: the U-Net's (`models.UNet`); None for DiffNet.
        final_relu: project the output onto non-negative values.
    """

    kind: str
    num_layers: int = None
    estimator_depth: int = None
    width: int = None
    boundary: str = None
    dt_init: float = None
    channel_mixing: str = None
    unet_filters: int = None
    unet_levels: int = None
    final_relu: bool = True

    def __post_init__(self):
        _choice(self, "kind", MODELS)
        diffnet = ("num_layers", "estimator_depth", "width", "boundary", "dt_init",
                   "channel_mixing")
        unet = ("unet_filters", "unet_levels")
        if self.kind == "diffnet":
            for name in ("num_layers", "estimator_depth", "width"):
                _integer(self, name, 1)
            _choice(self, "boundary", BOUNDARIES)
            _number(self, "dt_init", positive=True)
            _choice(self, "channel_mixing", CHANNEL_MIXINGS, optional=True)
            _unused(self, unet, "a DiffNet")
        else:
            _integer(self, "unet_filters", 1)
            _integer(self, "unet_levels", 2)
            _unused(self, diffnet, "a U-Net")
        if not isinstance(self.final_relu, bool):
            raise ValueError(f"Expected ModelSpec.final_relu True or False. Received "
                             f"{self.final_relu!r}.")


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """The optimisation: Adam with a geometric learning-rate decay over the whole run.

    Attributes:
        epochs: passes over the training set (an upper bound with early stopping).
        batch_size: images per optimizer step.
        lr_init, lr_final: Adam's learning rate at the first and after the last step.
        loss: 'l2norm' (||relu(target) - output||_2 / batch size, the released code) or 'mse'.
        seed: seed of the weights and the shuffling.
        epoch_repeats: times each training image is shown per epoch (Sect. 6.1's small sets).
        patience: early stopping after this many epochs without a lower validation loss,
            keeping the best epoch's weights; None trains every epoch.
        precision: the matrix products and convolutions of training: 'float32' (true
            float32 on every device) or 'fast' (the device's default: TF32 on NVIDIA GPUs
            since Ampere); `precision.matrix_precision`.
    """

    epochs: int
    batch_size: int
    lr_init: float
    lr_final: float
    loss: str = protocols.LOSS
    seed: int = 0
    epoch_repeats: int = 1
    patience: int = None
    precision: str = protocols.PRECISION

    def __post_init__(self):
        for name in ("epochs", "batch_size", "epoch_repeats"):
            _integer(self, name, 1)
        for name in ("lr_init", "lr_final"):
            _number(self, name, positive=True)
        if self.lr_final > self.lr_init:
            raise ValueError("Expected 0 < lr_final <= lr_init. Received "
                             f"lr_init={self.lr_init}, lr_final={self.lr_final}.")
        _choice(self, "loss", tuple(losses.LOSSES))
        _integer(self, "seed", 0)
        _integer(self, "patience", 1, optional=True)
        _choice(self, "precision", PRECISIONS)


SECTIONS = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A whole run: `data`, `model` and `train`. JSON round trip, stable hash, folder name.

    Attributes:
        data: a DataSpec.
        model: a ModelSpec.
        train: a TrainSpec.
    """

    data: DataSpec
    model: ModelSpec
    train: TrainSpec

    def __post_init__(self):
        colour_diffnet = self.model.kind == "diffnet" and self.data.channels > 1
        if colour_diffnet != (self.model.channel_mixing is not None):
            raise ValueError(
                "Expected model.channel_mixing 'none' or 'full' for a DiffNet on colour "
                "images and None otherwise. Received channel_mixing="
                f"{self.model.channel_mixing!r} with {self.model.kind} and "
                f"{self.data.channels} channel(s).")
        if self.model.kind == "unet" and self.data.image_size % 2 ** (self.model.unet_levels - 1):
            raise ValueError(f"Expected an image size divisible by {2 ** (self.model.unet_levels - 1)}"
                             f" for a U-Net of {self.model.unet_levels} levels. Received "
                             f"{self.data.image_size}.")

    def to_dict(self):
        """A JSON-ready dict: {'format', 'data', 'model', 'train'}."""
        values = {"format": SPEC_FORMAT, **{name: dataclasses.asdict(getattr(self, name))
                                            for name in SECTIONS}}
        if self.data.source != "folder":
            for name in _FOLDER_FIELDS:
                del values["data"][name]
        return values

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values):
        """The RunSpec of a `to_dict` dict; raises a ValueError naming any unknown,
        missing or invalid field."""
        if not isinstance(values, dict) or values.get("format") != SPEC_FORMAT:
            found = values.get("format") if isinstance(values, dict) else type(values).__name__
            raise ValueError(f"Expected a run spec of format {SPEC_FORMAT}. Received format {found!r}.")
        unknown = set(values) - set(SECTIONS) - {"format"}
        if unknown:
            raise ValueError(f"Unknown run spec sections {sorted(unknown)}. Expected "
                             f"{sorted(SECTIONS)}.")
        return cls(**{name: _section(section, values.get(name))
                      for name, section in SECTIONS.items()})

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path):
        """The RunSpec stored at `path` (spec.json); errors name the file."""
        try:
            with open(path, encoding="utf-8") as file:
                return cls.from_json(file.read())
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path} does not hold a valid run spec: {error}") from error

    @property
    def digest(self):
        """SHA-256 of the canonical JSON (sorted keys, no spaces): equal specs, equal digest."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def folder_name(self):
        """A readable name and the digest's first 10 hex digits, e.g.
        'diffnet_pm_inverse_synthetic_noise0.01_n1000-3f2a9c01be'."""
        colour = "_rgb" if self.data.channels == 3 else ""
        return (f"{self.model.kind}_{self.data.problem}_{self.data.source}{colour}_noise"
                f"{self.data.noise:g}_n{self.data.train_size}-{self.digest[:10]}")

    def replace(self, **sections):
        """A new RunSpec with fields replaced, e.g. replace(data={"noise": 0.01})."""
        unknown = set(sections) - set(SECTIONS)
        if unknown:
            raise ValueError(f"Unknown run spec sections {sorted(unknown)}. Expected "
                             f"{sorted(SECTIONS)}.")
        return RunSpec(**{name: dataclasses.replace(getattr(self, name), **sections.get(name, {}))
                          for name in SECTIONS})


def _section(section, values):
    if not isinstance(values, dict):
        raise ValueError(f"Expected the {section.__name__} fields as a dict. Received {values!r}.")
    fields = dataclasses.fields(section)
    names = {field.name for field in fields}
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    unknown, missing = set(values) - names, required - set(values)
    if unknown or missing:
        raise ValueError(f"Unknown {section.__name__} fields {sorted(unknown)}, missing "
                         f"{sorted(missing)}. Expected {sorted(names)}.")
    return section(**values)


def protocol(name):
    """The paper's protocol `name` (a key of `protocols.PROTOCOLS`) as a RunSpec."""
    check_choice(name, tuple(protocols.PROTOCOLS), "protocol")
    return RunSpec.from_dict({"format": SPEC_FORMAT, **protocols.PROTOCOLS[name]})

"""The paper's protocols: every number of its experiments, written once (Sects. 4-6).

Pure data, and the rule of the train / test split, importing nothing: the physics, the
networks, the run spec and the experiments take their defaults from here. `PROTOCOLS`
are the paper's protocols as complete run descriptions (`diffnet_tf.spec.protocol(name)`
turns one into a `RunSpec`). Values marked "ours" are choices the paper leaves open;
PAPER_FACTS.md in the steering repository and docs/DESIGN.md explain the rest.
"""

# ---------------------------------------------------------------- forward problems (Sect. 5)
PM_STEPS = 4  # Sect. 5.2: Perona-Malik by 4 explicit steps ...
PM_DT = 0.1  # ... of dt = 0.1 ...
PM_LAMBDA = 0.2  # ... with contrast parameter lambda = 0.2
HEAT_TIME = 1.0  # Sect. 5.1: the discs are blurred by the heat equation to T = 1
HEAT_SOLVER = "exact"  # ours: the paper does not say; exp(T L) with its eq. (4.5)
HEAT_EXPLICIT_DT = 0.1  # ours: the released data script's explicit step (ADdeltaT)
NOISE_LEVELS = (0.0, 1e-3, 1e-2)  # Sect. 5.2: noise-free, 0.1 %, 1 % of the image maximum

# Colour (Remark 4; ours): vector-valued Perona-Malik data, one diffusivity for all channels
# (as in Sapiro-Ringach and Tschumperle-Deriche); DiffNet's filters per channel.
COLOUR_PM_COUPLING = "shared"
COLOUR_CHANNEL_MIXING = "none"

# ---------------------------------------------------------------- networks (Sect. 4.3, Figs. 2-3)
DIFFNET_LAYERS = 5  # Sect. 5.2
DISC_LAYERS = 3  # Sect. 5.1
ESTIMATOR_DEPTH = 4  # convolutions per filter estimator
ESTIMATOR_WIDTH = 32  # channels of its hidden convolutions
KERNEL_SIZE = 3
DT_INIT = 0.2  # the released code's initial learned time step
UNET_FILTERS = 64  # the U-Net's first level: 64 ... 1024 channels, 34,512,705 parameters
UNET_LEVELS = 5

# ---------------------------------------------------------------- data (Sects. 5.1, 5.2)
STL10_SIDE = 96
POOL_SIZE = 100_000  # STL-10's unlabelled images; the generated sources have as many
TEST_FRACTION = 0.1  # 90,000 training / 10,000 test images
SPLITS = ("train", "test")


def split_range(split, total):
    """(first index, count) of `split` in a pool of `total` images: 'train' is the first
    90 %, 'test' the remaining 10 % (rounded), disjoint: the one place the split is made."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Expected one of 'train', 'test'.")
    test = round(total * TEST_FRACTION)
    return (0, total - test) if split == "train" else (total - test, test)


TRAIN_IMAGES = split_range("train", POOL_SIZE)[1]
TEST_IMAGES = split_range("test", POOL_SIZE)[1]

DISC_SIDE = 64
DISC_TRAIN_IMAGES = 1024
DISC_TEST_IMAGES = 128
DISC_PSNR = 86.24  # Sect. 5.1's result (train and test), most likely over 16-image batches
DISC_RELATIVE_L2 = 2.5e-4  # ... and its relative l2 error
VALIDATION_IMAGES = 500  # ours: validation for monitoring (Sect. 5.2 reports none)

# ---------------------------------------------------------------- optimisation (Sect. 5)
BATCH_SIZE = 16
PM_EPOCHS = 18
DISC_EPOCHS = 1000
LOSS = "l2norm"  # the released code's ||relu(target) - output||_2 / batch size
PRECISION = "float32"  # ours: true float32 training, as on the paper's Titan Xp (no TF32)
# Adam's first and last learning rate (geometric decay), by network and physics.
LEARNING_RATES = {
    ("diffnet", "perona_malik"): (2e-3, 4e-6),
    ("unet", "perona_malik"): (5e-4, 2e-5),
    ("diffnet", "heat"): (4e-4, 1e-6),
    ("unet", "heat"): (5e-4, 2e-5),  # ours: the paper trains no U-Net on discs
}

# ---------------------------------------------------------------- studies (Sect. 6)
GENERALISATION_SIZES = (10, 50, 100, 500, 1000, 5000, 10_000, 50_000, 90_000)  # Fig. 10
PATIENCE = 3  # ours: "aborted ... when the networks started to clearly overfit"
EPOCH_IMAGES = 5000  # ours: smaller training sets are repeated to fill an epoch
INTERPRETATION_NOISE_LEVELS = (1e-4, 1e-3, 1e-2, 1e-1, 0.0)  # Fig. 13
LARGEST_NOISE = max(INTERPRETATION_NOISE_LEVELS)  # the paper's largest noise level
MAX_NOISE = 1.0  # ours: sigma at most the image maximum (beyond it no image is left to see)
ALPHA_SAMPLES = 32  # Fig. 13: test images per noise level

# ---------------------------------------------------------------- the protocols as run specs
_PERONA_MALIK_DATA = {
    "problem": "pm_inverse", "source": "stl10", "image_size": STL10_SIDE, "channels": 1,
    "train_size": TRAIN_IMAGES, "val_size": VALIDATION_IMAGES, "test_size": TEST_IMAGES,
    "validation": "test_head", "noise": 0.0, "seed": 0,
    "pm_steps": PM_STEPS, "pm_dt": PM_DT, "pm_lambda": PM_LAMBDA,
    "pm_convention": "neumann", "pm_diffusivity": "perona_malik", "pm_coupling": None,
    "heat_time": None, "heat_solver": None, "max_discs": None,
}
_DISC_DATA = dict(
    _PERONA_MALIK_DATA, problem="heat_inverse", source="discs", image_size=DISC_SIDE,
    train_size=DISC_TRAIN_IMAGES, val_size=DISC_TEST_IMAGES, test_size=DISC_TEST_IMAGES,
    pm_steps=None, pm_dt=None, pm_lambda=None, pm_convention=None, pm_diffusivity=None,
    heat_time=HEAT_TIME, heat_solver=HEAT_SOLVER, max_discs=1,
)
_DIFFNET = {
    "kind": "diffnet", "num_layers": DIFFNET_LAYERS, "estimator_depth": ESTIMATOR_DEPTH,
    "width": ESTIMATOR_WIDTH, "boundary": "neumann", "dt_init": DT_INIT,
    "channel_mixing": None, "unet_filters": None, "unet_levels": None, "final_relu": True,
}
_UNET = dict(
    _DIFFNET, kind="unet", num_layers=None, estimator_depth=None, width=None, boundary=None,
    dt_init=None, unet_filters=UNET_FILTERS, unet_levels=UNET_LEVELS,
)


def _train(network, physics, epochs, **study):
    lr_init, lr_final = LEARNING_RATES[(network, physics)]
    return dict({"epochs": epochs, "batch_size": BATCH_SIZE, "lr_init": lr_init,
                 "lr_final": lr_final, "loss": LOSS, "seed": 0, "epoch_repeats": 1,
                 "patience": None, "precision": PRECISION}, **study)


# Sect. 6.1 cells: early stopping on validation images taken from the train split, after
# the training images; the largest cell has 90,000 - 500 training images.
_GENERALISATION_DATA = dict(_PERONA_MALIK_DATA, validation="train_tail",
                            train_size=TRAIN_IMAGES - VALIDATION_IMAGES)

PROTOCOLS = {
    "perona_malik": {  # Sect. 5.2, DiffNet
        "data": _PERONA_MALIK_DATA, "model": _DIFFNET,
        "train": _train("diffnet", "perona_malik", PM_EPOCHS),
    },
    "perona_malik_unet": {  # Sect. 5.2, the U-Net baseline
        "data": _PERONA_MALIK_DATA, "model": _UNET,
        "train": _train("unet", "perona_malik", PM_EPOCHS),
    },
    "deconvolution": {  # Sect. 5.1, discs
        "data": _DISC_DATA, "model": dict(_DIFFNET, num_layers=DISC_LAYERS),
        "train": _train("diffnet", "heat", DISC_EPOCHS),
    },
    "interpretation": {  # Sect. 6.2: the Sect. 5.2 DiffNet, one per noise level
        "data": _PERONA_MALIK_DATA, "model": _DIFFNET,
        "train": _train("diffnet", "perona_malik", PM_EPOCHS),
    },
    "generalisation": {  # Sect. 6.1, one DiffNet cell (train_size set per cell)
        "data": _GENERALISATION_DATA, "model": _DIFFNET,
        "train": _train("diffnet", "perona_malik", PM_EPOCHS, patience=PATIENCE),
    },
    "generalisation_unet": {  # Sect. 6.1, one U-Net cell
        "data": _GENERALISATION_DATA, "model": _UNET,
        "train": _train("unet", "perona_malik", PM_EPOCHS, patience=PATIENCE),
    },
}

# ---------------------------------------------------------------- the paper's results
# Every result the paper reports, once: id -> (where, what, value); experiments.reproduce
# sets each beside a run's. A (low, high) value is a range; True a claim without a number.
PAPER_RESULTS = {
    "disc_psnr": ("Sect. 5.1", "DiffNet-3 on discs, test PSNR (dB)", DISC_PSNR),
    "disc_relative_l2": ("Sect. 5.1", "DiffNet-3 on discs, relative l2 error",
                         DISC_RELATIVE_L2),
    "disc_minutes": ("Sect. 5.1", "DiffNet-3 on discs, training time (min; the paper's: one "
                     "Titan Xp)", 24),
    "diffnet_parameters": ("Sect. 6", "DiffNet-5 parameters", 101_310),
    "unet_parameters": ("Sect. 6", "U-Net parameters", 34_512_705),
    "pm_diffnet_psnr": ("Fig. 6", "DiffNet, noise-free inversion, mean test PSNR (dB)", 63.72),
    "pm_diffnet_noisy_psnr": ("Fig. 7", "DiffNet, 1 % noise, mean test PSNR (dB)", 34.21),
    "pm_diffnet_psnr_image": ("Fig. 8", "DiffNet, noise-free, the shown test image (dB)",
                              65.34),
    "pm_unet_psnr_image": ("Fig. 8", "U-Net, noise-free, the shown test image (dB)", 61.08),
    "pm_diffnet_noisy_psnr_image": ("Fig. 9", "DiffNet, 1 % noise, the shown test image (dB)",
                                    34.96),
    "pm_unet_noisy_psnr_image": ("Fig. 9", "U-Net, 1 % noise, the shown test image (dB)",
                                 35.27),
    "pm_diffnet_minutes": ("Sect. 5.2", "DiffNet training time (min; the paper's: one Titan "
                           "Xp)", 75),
    "pm_unet_minutes": ("Sect. 5.2", "U-Net training time (min; the paper's: one Titan Xp)",
                        180),
    "fig10_forward_gain": ("Fig. 10", "forward problem: DiffNet minus U-Net at the largest "
                           "training set (dB)", 4.0),
    "fig10_noise0_gain": ("Fig. 10", "noise-free inversion: DiffNet minus U-Net at the "
                          "largest training set (dB)", 3.0),
    "fig10_noise0.001_gain": ("Fig. 10", "0.1 % noise: DiffNet minus U-Net at the largest "
                              "training set (dB; 'very similar')", 0.0),
    "fig10_noise0.01_gain": ("Fig. 10", "1 % noise: DiffNet minus U-Net at the largest "
                             "training set (dB; 'very similar')", 0.0),
    "fig10_diffnet_saturation": ("Fig. 10", "training images DiffNet needs for its best test "
                                 "PSNR (within 0.5 dB), every panel", (500, 1000)),
    "fig13_alpha_grows": ("Fig. 13", "the estimate of alpha grows with the noise level",
                          True),
}

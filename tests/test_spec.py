"""The run spec: complete, immutable, JSON round trip, stable digest, the paper's protocols,
and errors that name the field."""

import dataclasses
import json

import pytest

from diffnet_tf import protocols, spec


def small(**data):
    return spec.protocol("perona_malik").replace(
        data=dict(dict(source="synthetic", train_size=1000, val_size=200, test_size=200), **data))


@pytest.mark.parametrize("name", list(protocols.PROTOCOLS))
def test_every_protocol_round_trips_through_json_with_the_same_digest(name, tmp_path):
    protocol = spec.protocol(name)
    path = tmp_path / "spec.json"
    path.write_text(protocol.to_json())
    loaded = spec.RunSpec.load(path)
    assert loaded == protocol and loaded.digest == protocol.digest
    assert loaded.folder_name.endswith("-" + protocol.digest[:10])


def test_the_paper_protocols_are_the_papers_numbers():
    pm, unet, discs = (spec.protocol(n) for n in ("perona_malik", "perona_malik_unet",
                                                "deconvolution"))
    # Sect. 5.2: STL-10, 90,000 / 10,000 images of 96x96, PM 4 x 0.1, lambda 0.2, 18 epochs,
    # batch 16, Adam 2e-3 -> 4e-6 (DiffNet), 5e-4 -> 2e-5 (U-Net); DiffNet-5 with K = 4.
    assert (pm.data.source, pm.data.image_size, pm.data.train_size, pm.data.test_size) == (
        "stl10", 96, 90_000, 10_000)
    assert (pm.data.pm_steps, pm.data.pm_dt, pm.data.pm_lambda) == (4, 0.1, 0.2)
    assert (pm.train.epochs, pm.train.batch_size, pm.train.lr_init, pm.train.lr_final) == (
        18, 16, 2e-3, 4e-6)
    assert (pm.model.num_layers, pm.model.estimator_depth, pm.model.width) == (5, 4, 32)
    assert (unet.train.lr_init, unet.train.lr_final, unet.model.unet_filters) == (5e-4, 2e-5, 64)
    assert unet.data == pm.data
    # Sect. 5.1: 1024 / 128 discs of 64x64, heat T = 1, DiffNet-3, 1000 epochs, 4e-4 -> 1e-6.
    assert (discs.data.train_size, discs.data.test_size, discs.data.image_size) == (1024, 128, 64)
    assert (discs.data.heat_time, discs.model.num_layers, discs.train.epochs) == (1.0, 3, 1000)
    assert (discs.train.lr_init, discs.train.lr_final) == (4e-4, 1e-6)
    # Sect. 6.2 trains the Sect. 5.2 DiffNet: the same runs, the same folders.
    assert spec.protocol("interpretation") == pm


def test_equal_specs_have_equal_digests_and_any_change_changes_the_folder():
    assert small().digest == small().digest and small() == small()
    base = small()
    changes = [dict(data={"noise": 0.01}), dict(data={"seed": 1}), dict(data={"pm_dt": 0.2}),
               dict(data={"pm_convention": "original"}), dict(data={"train_size": 999}),
               dict(model={"num_layers": 3}), dict(model={"boundary": "zero"}),
               dict(train={"lr_init": 1e-3}), dict(train={"epochs": 5}),
               dict(train={"batch_size": 8}), dict(train={"seed": 1}),
               dict(train={"precision": "fast"})]
    names = {base.replace(**change).folder_name for change in changes}
    assert len(names) == len(changes) and base.folder_name not in names


def test_the_heat_solver_is_part_of_a_disc_runs_identity_and_none_reads_as_exact():
    discs = spec.protocol("deconvolution")
    names = {discs.replace(data={"heat_solver": s}).folder_name for s in ("explicit", "implicit")}
    assert len(names | {discs.folder_name}) == 3
    assert discs.replace(data={"heat_solver": None}) == discs  # a spec.json before the field
    with pytest.raises(ValueError, match="Unknown DataSpec.heat_solver 'rk4'"):
        discs.replace(data={"heat_solver": "rk4"})


def test_numbers_are_normalised_so_0_and_0_point_0_are_one_spec():
    assert small(noise=0).digest == small(noise=0.0).digest
    assert isinstance(small(noise=0).data.noise, float)


def test_the_folder_name_is_readable():
    name = small(noise=0.01).folder_name
    assert name.startswith("diffnet_pm_inverse_synthetic_noise0.01_n1000-") and len(name) == 55


def test_specs_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        small().data.noise = 0.5


@pytest.mark.parametrize("change, message", [
    (dict(data={"noise": float("nan")}), r"DataSpec.noise to be a finite number. Received nan"),
    (dict(data={"noise": float("inf")}), r"DataSpec.noise to be a finite number. Received inf"),
    (dict(data={"noise": -0.1}), r"DataSpec.noise >= 0"),
    (dict(data={"pm_dt": 0.3}), r"Unstable explicit step.*dt=0.3"),
    (dict(data={"pm_lambda": float("inf")}), r"DataSpec.pm_lambda to be a finite number"),
    (dict(data={"heat_time": 1.0}), r"DataSpec.heat_time to be None \(problem 'pm_inverse'"),
    (dict(data={"max_discs": 2}), r"DataSpec.max_discs to be None"),
    (dict(data={"heat_solver": "exact"}), r"DataSpec.heat_solver to be None \(problem 'pm_inverse'"),
    (dict(data={"source": "stl10", "image_size": 64}), r"image_size 96 for STL-10"),
    (dict(data={"train_size": 90_001}), r"at most 90,000 training images"),
    (dict(data={"validation": "train_tail", "train_size": 89_900}), r"train_size \+ val_size"),
    (dict(data={"val_size": 201}), r"val_size <= test_size: validation 'test_head' is the first"),
    (dict(data={"channels": 2}), r"Unknown DataSpec.channels 2"),
    (dict(data={"channels": 3}), r"Unknown coupling None"),
    (dict(data={"problem": "pm_backward"}), r"Unknown problem 'pm_backward'"),
    (dict(model={"unet_filters": 4}), r"ModelSpec.unet_filters to be None \(a DiffNet\)"),
    (dict(model={"num_layers": 0}), r"ModelSpec.num_layers to be an integer >= 1"),
    (dict(model={"dt_init": 0.0}), r"ModelSpec.dt_init > 0"),
    (dict(train={"lr_init": float("inf")}), r"TrainSpec.lr_init to be a finite number"),
    (dict(train={"lr_final": 0.1}), r"0 < lr_final <= lr_init"),
    (dict(train={"epochs": 2.5}), r"TrainSpec.epochs to be an integer"),
    (dict(train={"patience": 0}), r"TrainSpec.patience to be an integer >= 1"),
    (dict(train={"precision": "tf32"}), r"Unknown TrainSpec.precision 'tf32'. Expected one of "
                                        r"'float32', 'fast'"),
])
def test_invalid_specs_are_refused_naming_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        small().replace(**change)


def test_a_colour_diffnet_needs_a_channel_mixing_and_a_grey_one_none():
    with pytest.raises(ValueError, match="channel_mixing 'none' or 'full' for a DiffNet on colour"):
        small(channels=3, pm_coupling="shared")
    colour = spec.protocol("perona_malik").replace(
        data={"source": "synthetic", "channels": 3, "pm_coupling": "shared"},
        model={"channel_mixing": "full"})
    assert colour.folder_name.startswith("diffnet_pm_inverse_synthetic_rgb_")
    with pytest.raises(ValueError, match="channel_mixing"):
        small().replace(model={"channel_mixing": "none"})


def test_a_unet_needs_an_image_size_its_levels_divide():
    with pytest.raises(ValueError, match="divisible by 16 for a U-Net of 5 levels. Received 40"):
        spec.protocol("perona_malik_unet").replace(data={"source": "synthetic", "image_size": 40})


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format=0), "format 1. Received format 0"),
    (lambda d: d.update(extra={}), r"Unknown run spec sections \['extra'\]"),
    (lambda d: d["data"].update(colour=True), r"Unknown DataSpec fields \['colour'\]"),
    (lambda d: d["train"].pop("epochs"), r"missing \['epochs'\]"),
])
def test_from_dict_refuses_unknown_or_missing_fields(edit, message):
    values = json.loads(small().to_json())
    edit(values)
    with pytest.raises(ValueError, match=message):
        spec.RunSpec.from_dict(values)


def test_a_damaged_spec_file_is_named(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{"format": 1, "data": ')
    with pytest.raises(ValueError, match=f"{path} does not hold a valid run spec"):
        spec.RunSpec.load(path)


def test_unknown_protocols_and_sections_are_named():
    with pytest.raises(ValueError, match="Unknown protocol 'paper'"):
        spec.protocol("paper")
    with pytest.raises(ValueError, match=r"Unknown run spec sections \['optimiser'\]"):
        small().replace(optimiser={"epochs": 1})

"""experiments.photographs: models on a folder of photographs diffused by their own data
physics, one table row per model."""

import numpy as np
import pytest
from absl import app

from diffnet_tf import image_io, metrics, pairs, spec
from diffnet_tf.cli.startup import parse
from diffnet_tf.models import DiffNet
from experiments import photographs


def run(*args):
    return photographs.main(parse(photographs.FLAGS, ["prog", *args]))


@pytest.fixture()
def run_folder(tmp_path):
    """A run folder: a small DiffNet's model.keras beside its spec.json (noise 0.01)."""
    run_spec = spec.protocol("perona_malik").replace(
        data={"source": "synthetic", "noise": 0.01, "image_size": 16},
        model={"num_layers": 1, "estimator_depth": 2, "width": 4})
    model = DiffNet(num_layers=1, estimator_depth=2, width=4)
    model(np.zeros((1, 16, 16, 1), np.float32))
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "model.keras")
    (tmp_path / "run" / "spec.json").write_text(run_spec.to_json())
    return tmp_path / "run", run_spec


def test_each_model_gets_a_row_with_the_input_psnr_of_its_own_physics(tmp_path, run_folder,
                                                                      capsys):
    folder, run_spec = run_folder
    rng = np.random.default_rng(1)
    photos = [rng.random((24, 20)).astype(np.float32) * 0.8 + 0.1 for _ in range(2)]
    for k, photo in enumerate(photos):
        image_io.write_image(tmp_path / "photos" / f"{k}.npy", photo)
    colour = rng.random((24, 20, 3)).astype(np.float32)
    image_io.write_image(tmp_path / "photos" / "z_colour.npy", colour)
    run(f"--photos={tmp_path / 'photos'}", f"--photo_models={folder / 'model.keras'}",
        "--verbose=0")
    row = capsys.readouterr().out.strip().splitlines()[-1].split("|")[1:-1]
    assert row[1:4] == [" pm_inverse ", " 0.01 ", " 3 "]  # the colour one in grey
    grey = [*photos, colour @ np.array([0.2989, 0.5870, 0.1140], np.float32)]
    expected = []
    for k, photo in enumerate(grey):  # in file-name order, photograph k with noise index k
        clean = (photo / photo.max())[None, ..., None]
        inputs, targets = pairs.pairs_from_images(clean, run_spec.data, start=k)
        expected.append(float(np.asarray(metrics.psnr(targets, inputs))[0]))
    assert float(row[4]) == pytest.approx(np.mean(expected), abs=0.006)
    assert 0 < float(row[6]) <= 1


def test_a_model_without_a_spec_is_refused_naming_it(tmp_path):
    (tmp_path / "lone.keras").write_bytes(b"")
    with pytest.raises(app.UsageError, match="Expected a preset .* or a model.keras in a run "
                                             "folder .* Received '.*lone.keras'"):
        photographs.model_and_spec(str(tmp_path / "lone.keras"))

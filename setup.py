"""Installs diffnet_tf, the reference implementation of DiffNet (Arridge & Hauptmann 2020)."""

from setuptools import find_packages, setup

setup(
    name="diffnet_tf",
    version="0.1.0",
    description=(
        "DiffNet: learned nonlinear-diffusion networks for imaging "
        "(Arridge & Hauptmann, J. Math. Imaging Vis. 2020) in Keras 3"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # the library and its command line; experiments/ (the paper's programs) stays in the
    # repository: `python -m experiments.<name>` from a checkout
    packages=find_packages(include=["diffnet_tf", "diffnet_tf.*"]),
    # the trained models shipped with the package (diffnet_tf.presets)
    package_data={"diffnet_tf": ["pretrained/*/model.keras", "pretrained/*/preset.json"]},
    entry_points={"console_scripts": ["diffnet-restore = diffnet_tf.cli.restore:run"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "tensorflow-datasets",
        "tensorboard",  # tf.summary and the TensorBoard UI; TF 2.21 no longer installs it
        "keras>=3",
        "numpy",
        "matplotlib",
        "Pillow>=10.1",  # PNG panels for TensorBoard; a scalable default font
        "absl-py",
    ],
    # the studies' executors (--executor=ray, --executor=slurm: diffnet_tf.launch);
    # jax (CPU): the tests that load a model saved under JAX in TensorFlow and back
    # tiff: TIFF images (diffnet_tf.tiff); photos: scikit-image's public-domain
    # photographs for experiments.photographs (shipped in its wheel, no download)
    extras_require={"ray": ["ray>=2.9"], "slurm": ["submitit>=1.5"], "tiff": ["tifffile"],
                    "photos": ["scikit-image"],
                    "test": ["pytest", "jax", "ray>=2.9", "submitit>=1.5", "tifffile"]},
)

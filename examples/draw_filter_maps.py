"""Draw a trained DiffNet's filter maps for one image (the paper's Figs. 5 and 11).

    python examples/draw_filter_maps.py --model pm_inverse_noise0.01 --out filters.png

Each row is a layer; its columns are the five stencil weights zeta_1..zeta_5 the filter
estimator computed from the image, and their smoothing part S = sum zeta_1..4 - zeta_5
(Sect. 6.2). The image is a photograph (--image) or an embedded synthetic one, diffused by
the model's Perona-Malik data.
"""

import argparse
import dataclasses

from diffnet_tf import image_io, plotting, presets, saving, spec, synthetic
from diffnet_tf.pairs import pairs_from_images


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pm_inverse_noise0.01",
                        help="a grey preset's name or a saved DiffNet .keras file")
    parser.add_argument("--image", help="a grey or colour image (default: a synthetic one)")
    parser.add_argument("--size", type=int, default=96, help="side of the synthetic image")
    parser.add_argument("--out", default="filter_maps.png")
    args = parser.parse_args()

    shipped = presets.list_presets()
    model = presets.load(args.model) if args.model in shipped else saving.load_model(args.model)
    if args.image:
        image, _ = image_io.read_image(args.image)
        clean = synthetic.scale_to_max_one((image @ synthetic.GREY_WEIGHTS)[None, ..., None]
                                           if image.shape[-1] == 3 else image[None])
    else:
        clean = synthetic.synthetic_images(1, args.size, seed=0)
    data = dataclasses.replace(spec.protocol("perona_malik").data, noise=0.01)
    inputs, _ = pairs_from_images(clean, data)  # the diffused image the model sees
    filters = model.trace(inputs)["filters"]  # per layer: (1, H, W, 5)
    plotting.filter_maps([zeta[0] for zeta in filters], args.out,
                         title=f"{args.model}: filter maps per layer")
    print(f"wrote {args.out} ({len(filters)} layers)")


if __name__ == "__main__":
    main()

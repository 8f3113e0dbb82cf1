"""The flags that set RunSpec fields (flag_table's `fields`): a protocol's RunSpec with the
fields the flags set, and library messages naming a spec field given with its flag."""

import os
import re

from absl import app

from diffnet_tf import image_folder, protocols
from diffnet_tf.cli.flag_table import TABLE

# flag name -> the (section, field) pairs it sets, in the table's order
SPEC_FLAGS = {name: tuple(tuple(field.split(".")) for field in flag.fields)
              for name, flag in TABLE.items() if flag.fields}
# flag name -> the one network ('diffnet' or 'unet') whose spec it sets
NETWORK_FLAGS = {name: flag.network for name, flag in TABLE.items() if flag.network}


def spec_overrides(values):
    """The RunSpec fields the flags set: {'data': {...}, 'model': {...}, 'train': {...}}.

    Args:
        values: the parsed flag values (a dict); flags left at None keep the protocol's
            value, flags that set no spec field are ignored.
    """
    sections = {"data": {}, "model": {}, "train": {}}
    for name, fields in SPEC_FLAGS.items():
        if values.get(name) is not None:
            for section, field in fields:
                sections[section][field] = values[name]
    return sections


def network_values(values, network):
    """The flag values that apply to `network` ('diffnet' or 'unet'): the other network's
    own flags left out (for studies that train both)."""
    return {name: value for name, value in values.items()
            if NETWORK_FLAGS.get(name, network) == network}


def spec_from_flags(protocol_spec, values):
    """`protocol_spec` (a RunSpec) with the fields the flags set; errors name the flag.

    Validation images of 'test_head' are the first test images: --test_size alone lowers
    the protocol's val_size to it (e.g. --test_size=200 validates on those 200). A colour
    run (--channels=3) takes protocols' colour coupling and channel mixing unless the
    flags name them.

    Raises:
        app.UsageError: the fields make no valid RunSpec; the message names the flags.
    """
    overrides = spec_overrides(values)
    data, model = overrides["data"], overrides["model"]
    if (protocol_spec.data.validation == "test_head" and "val_size" not in data
            and "test_size" in data):
        data["val_size"] = min(protocol_spec.data.val_size, data["test_size"])
    if data.get("channels", protocol_spec.data.channels) > 1:  # colour: its two defaults
        if protocol_spec.data.pm_steps is not None:
            data.setdefault("pm_coupling", protocols.COLOUR_PM_COUPLING)
        if protocol_spec.model.kind == "diffnet":
            model.setdefault("channel_mixing", protocols.COLOUR_CHANNEL_MIXING)
    try:
        return _with_folder(protocol_spec, overrides)
    except ValueError as error:
        raise app.UsageError(flag_message(str(error), values)) from error


def _with_folder(protocol_spec, overrides):
    """`protocol_spec` with `overrides`; a folder source (--dataset=folder) gets its absolute
    path and content digest, has no discs, and every image is read once first, so a bad
    file ends the program before any work, named."""
    data = overrides["data"]
    if data.get("source", protocol_spec.data.source) != "folder":
        return protocol_spec.replace(**overrides)
    if data.get("images") is not None:
        data["images"] = os.path.abspath(data["images"])
        data["images_digest"] = image_folder.folder_digest(data["images"])
    data.setdefault("max_discs", None)
    run_spec = protocol_spec.replace(**overrides)
    from diffnet_tf.pairs import pool_sizes  # Keras: imported only for a folder

    for split, n in pool_sizes(run_spec.data).items():
        image_folder.folder_images(run_spec.data.images, split, run_spec.data.image_size,
                                   run_spec.data.channels, n)
    return run_spec


def flag_message(message, known=None):
    """A library message with each spec field (e.g. 'DataSpec.noise' or 'data.noise')
    followed by its flag, e.g. 'DataSpec.noise (--noise)'.

    Args:
        message: the library's message.
        known: the flags the program takes (its FlagValues, or its flag values as a
            dict): only those are named. None names every spec flag.
    """
    fields = {}
    for name, places in SPEC_FLAGS.items():
        if known is None or name in known:
            for section, field in places:
                fields[f"{section.capitalize()}Spec.{field}"] = name
                fields[f"{section}.{field}"] = name
    if not fields:
        return message
    pattern = re.compile("|".join(re.escape(k) for k in sorted(fields, key=len, reverse=True)))
    return pattern.sub(lambda m: f"{m.group(0)} (--{fields[m.group(0)]})", message)

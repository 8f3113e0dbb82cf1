"""The forward problems of the paper's experiments, as a small registry of objects.

A `Problem` says which physics maps clean images to diffused ones (its parameters are the
`pm_*` or `heat_*` fields of a `diffnet_tf.spec.DataSpec`), which side the network sees
(inverse problems: the diffused image; the forward problem: the clean one), which image
source its experiment uses by default, and which learning-rate family of
`protocols.LEARNING_RATES` it belongs to.
"""

import dataclasses

from diffnet_tf import physics, protocols
from diffnet_tf.checks import check_choice


def _perona_malik(clean, data):
    return physics.perona_malik(clean, data.pm_steps, data.pm_dt, data.pm_lambda,
                                data.pm_convention, data.pm_diffusivity, data.pm_coupling)


def _check_perona_malik(data):
    if data.channels > 1:  # named in the spec (physics reads None as 'shared'): one run, one spec
        check_choice(data.pm_coupling, physics.COUPLINGS, "coupling")
    physics.check_perona_malik_arguments(data.pm_steps, data.pm_dt, data.pm_lambda,
                                         data.pm_convention, data.pm_diffusivity,
                                         data.pm_coupling)


# The heat solvers a run's data may come from (`DataSpec.heat_solver`): physics.heat's
# arguments other than t. The paper does not say which made its discs (Sect. 5.1); the
# authors' AnisoDiff2d.m ('Iso') steps on a zero exterior.
HEAT_SOLVERS = {
    "exact": dict(method="exact", boundary="neumann", dt=None),  # exp(T L), eq. (4.5)
    "explicit": dict(method="explicit", boundary="zero", dt=protocols.HEAT_EXPLICIT_DT),
    "implicit": dict(method="implicit", boundary="zero", dt=None),  # one step of dt = T
}


def _heat(clean, data):
    return physics.heat(clean, data.heat_time, **HEAT_SOLVERS[data.heat_solver])


def _check_heat(data):
    check_choice(data.heat_solver, tuple(HEAT_SOLVERS), "DataSpec.heat_solver")
    solver = HEAT_SOLVERS[data.heat_solver]
    physics.heat_steps(data.heat_time, solver["method"], solver["dt"])


@dataclasses.dataclass(frozen=True)
class Physics:
    """A forward map and the DataSpec fields that parameterise it.

    Attributes:
        name: 'perona_malik' or 'heat'; also the learning-rate family of
            `protocols.LEARNING_RATES`.
        fields: the DataSpec fields it reads; every other physics field stays None.
        forward: forward(clean (B, H, W, C), data) -> diffused images.
        check: check(data) raises a ValueError unless the fields hold valid values.
    """

    name: str
    fields: tuple
    forward: object
    check: object


PERONA_MALIK = Physics(
    "perona_malik",
    ("pm_steps", "pm_dt", "pm_lambda", "pm_convention", "pm_diffusivity", "pm_coupling"),
    _perona_malik, _check_perona_malik)
HEAT = Physics("heat", ("heat_time", "heat_solver"), _heat, _check_heat)
PHYSICS_FIELDS = PERONA_MALIK.fields + HEAT.fields


@dataclasses.dataclass(frozen=True)
class Problem:
    """One forward problem.

    Attributes:
        name: the registry key, e.g. 'pm_inverse'.
        physics: the `Physics` that makes its data.
        input_is_clean: True for the forward problem (input clean + noise, target
            diffused), False for inverse problems (input diffused + noise, target clean).
        default_source: the image source when none is named.
        description: one line for messages and figures.
    """

    name: str
    physics: Physics
    input_is_clean: bool
    default_source: str
    description: str

    def pair(self, clean, diffused):
        """(input before noise, target) from clean and diffused images."""
        return (clean, diffused) if self.input_is_clean else (diffused, clean)


PROBLEMS = {
    problem.name: problem
    for problem in (
        Problem("pm_inverse", PERONA_MALIK, False, "synthetic",
                "invert Perona-Malik diffusion (Sect. 5.2)"),
        Problem("pm_forward", PERONA_MALIK, True, "synthetic",
                "learn Perona-Malik diffusion (Sect. 6)"),
        Problem("heat_inverse", HEAT, False, "discs",
                "invert the heat equation (Sect. 5.1)"),
    )
}


def get(name):
    """The registered Problem called `name`; raises a ValueError naming the choices."""
    return PROBLEMS[check_choice(name, tuple(PROBLEMS), "problem")]

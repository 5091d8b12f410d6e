"""The physics-grade simulator's specimen stage: potentials, projections, CTF, the image."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ttsim3d")
pytest.importorskip("torch_fourier_slice")
pytest.importorskip("torch_ctf")

from napari_cryoden.config.sections import ConfigError  # noqa: E402
from napari_cryoden.simulation.micrographs import ctf_zero  # noqa: E402
from napari_cryoden.simulation.params import SimulationParams  # noqa: E402
from napari_cryoden.simulation.physics import potentials, projection  # noqa: E402
from napari_cryoden.simulation.physics.specimen import (  # noqa: E402
    SpecimenParams,
    noise_free_image,
    transfer,
)
from napari_cryoden.simulation.physics.structures import (  # noqa: E402
    AtomicModel,
    load_structure,
    structure_names,
)

SMALL = SpecimenParams(pixel_size=(4.0, 4.0), structures=("enolase_3enl",), weights=(1.0,),
                       particle_density=40.0, ice_thickness=(300.0, 300.0))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A potential cache of this module's own, warmed with enolase at 4 Å."""
    folder = tmp_path_factory.mktemp("potentials")
    old = os.environ.get("CRYODEN_CACHE")
    os.environ["CRYODEN_CACHE"] = str(folder)
    potentials._potential.cache_clear()
    projection._transform.cache_clear()
    potentials.potential("enolase_3enl", 4.0)
    yield folder
    potentials._potential.cache_clear()
    projection._transform.cache_clear()
    if old is None:
        del os.environ["CRYODEN_CACHE"]
    else:
        os.environ["CRYODEN_CACHE"] = old


def test_the_library_holds_real_models_largest_first() -> None:
    names = structure_names()
    assert names[0] == "ribosome_6zu5" and len(names) >= 5
    masses = [load_structure(n).mass_kda for n in names]
    assert masses[0] > 2000 and masses[-1] < 60  # a 2.3 MDa ribosome down to a 43 kDa enolase
    model = load_structure("enolase_3enl")
    assert "H" not in set(model.elements)
    assert np.abs(model.xyz.mean(axis=0)).max() < 2.0  # centred (on the centre of mass)


def test_a_carbon_atom_integrates_to_its_scattering_factor() -> None:
    """∫V d³r = 47.878 V·Å² × f_e(0) (Kirkland), times ttsim3d's 1.043 bond factor."""
    from ttsim3d.scattering_potential import SCATTERING_PARAMS_A

    atom = AtomicModel("C", np.array(["C"]), np.zeros((1, 3), np.float32),
                       np.array([30.0], np.float32), 0.012, 0.0)
    for spacing in (1.0, 2.0):
        volume = potentials.simulate(atom, spacing, 300.0, "cpu")
        expected = 47.878 * 1.043 * sum(SCATTERING_PARAMS_A["C"])  # ≈ 125 V·Å³
        assert volume.sum() * spacing**3 == pytest.approx(expected, rel=0.02)


def test_potential_is_cached_on_disk_and_protein_exceeds_ice(cache: Path) -> None:
    volume = potentials.potential("enolase_3enl", 4.0)
    assert list(cache.glob("enolase_3enl_4A_300kV_v*.npz"))
    excess_per_da = volume.sum() * 4.0**3 / (load_structure("enolase_3enl").mass_kda * 1e3)
    assert 2.0 < excess_per_da < 5.0  # V·Å³/Da: protein (≈ 9) minus the ice it displaces (≈ 5.4)
    potentials._potential.cache_clear()
    np.testing.assert_allclose(potentials.potential("enolase_3enl", 4.0), volume)


def test_projection_along_z_sums_the_volume_and_orientations_conserve_it(cache: Path) -> None:
    import torch
    from torch_fourier_slice import project_3d_to_2d

    volume = potentials.potential("enolase_3enl", 4.0)
    rotations = np.stack([np.eye(3), *_rotations(5)])
    images = projection.project("enolase_3enl", 4.0, rotations)
    along_z = volume.sum(axis=0) * 4.0
    peak = np.abs(along_z).max()
    assert np.abs(images[0] - along_z).max() < 0.03 * peak  # trilinear slicing: a few %
    library = project_3d_to_2d(torch.from_numpy(volume), torch.eye(3)[None], pad_factor=4.0)
    assert np.abs(images[0] - library[0].numpy() * 4.0).max() < 1e-3 * peak
    totals = images.sum(axis=(1, 2))
    np.testing.assert_allclose(totals, along_z.sum(), rtol=0.03)


def test_resampling_keeps_the_projected_potential(cache: Path) -> None:
    images = projection.project("enolase_3enl", 4.0, _rotations(2))
    for pixel_size in (1.3, 3.0, 5.5):
        out = projection.resample(images, 4.0, pixel_size)
        padded, size = projection.resampled_size(images.shape[-1], 4.0, pixel_size)
        assert out.shape == (2, size, size)
        true_px = padded * 4.0 / size
        np.testing.assert_allclose(out.sum(axis=(1, 2)) * true_px**2,
                                   images.sum(axis=(1, 2)) * 16.0, rtol=1e-3)


def test_ctf_zeros_match_the_cartoon_simulator_and_low_frequencies_darken() -> None:
    params = SpecimenParams(b_factor=0.0)
    shape, px = (512, 512), 1.0
    for defocus in (0.8, 2.0):
        ctf = transfer(params, shape, px, (defocus, 0.0, 0.0))
        along_x = ctf[0, :]
        first = np.flatnonzero(np.sign(along_x[1:]) != np.sign(along_x[:-1]))[0]
        zero = ctf_zero(SimulationParams(), defocus)
        k = np.fft.rfftfreq(shape[1], px)
        assert k[first] <= zero <= k[first + 1]
        assert ctf[0, 0] == pytest.approx(-0.07)  # amplitude contrast: dark at k = 0
        assert ctf[0, 1] < -0.07  # phase contrast in underfocus: darker still


def test_image_is_a_transmission_and_particles_look_dark(cache: Path) -> None:
    params = dataclasses.replace(SMALL, ice_texture=0.0, carbon_edge_probability=0.0,
                                 defocus=(2.0, 2.0), b_factor=200.0)
    shot = noise_free_image(params, np.random.default_rng(3), (128, 160))
    assert shot.image.shape == (128, 160) and shot.image.dtype == np.float32
    assert shot.pixel_size == 4.0 and shot.defocus == 2.0 and not shot.carbon
    assert shot.image.min() >= 0
    transmission = np.exp(-300 / 3500)
    assert abs(float(shot.image.mean()) - transmission) < 0.03
    assert len(shot.particle_kinds) >= 3 and set(shot.particle_kinds) == {"enolase_3enl"}
    centres = shot.particle_centres
    assert np.all((centres >= 0) & (centres < np.array([128, 160])))
    at_centres = shot.image[centres[:, 0].astype(int), centres[:, 1].astype(int)]
    assert at_centres.mean() < shot.image.mean() - 0.005


def test_a_carbon_edge_on_an_odd_sized_canvas(cache: Path) -> None:
    """512 px at 4 Å pads to an odd FFT canvas: the ice texture must take the canvas's width."""
    from scipy import fft as sfft

    from napari_cryoden.simulation.physics.specimen import _padding

    params = dataclasses.replace(SMALL, carbon_edge_probability=1.0)
    size = next(n for n in range(40, 200)
                if sfft.next_fast_len(n + 2 * _padding(params, 4.0), True) % 2)
    shot = noise_free_image(params, np.random.default_rng(1), (size, size))
    assert shot.carbon and shot.image.shape == (size, size)


def test_the_same_seed_gives_the_same_image(cache: Path) -> None:
    one = noise_free_image(SMALL, np.random.default_rng(7), (96, 96))
    two = noise_free_image(SMALL, np.random.default_rng(7), (96, 96))
    other = noise_free_image(SMALL, np.random.default_rng(8), (96, 96))
    np.testing.assert_array_equal(one.image, two.image)
    np.testing.assert_array_equal(one.particle_centres, two.particle_centres)
    assert not np.array_equal(one.image, other.image)


@pytest.mark.parametrize("change, words", [
    ({"defocus": (3.0, 1.0)}, "specimen.defocus"),
    ({"pixel_size": (0.0, 1.0)}, "specimen.pixel_size"),
    ({"structures": ("4v1w",)}, "specimen.structures"),
    ({"structures": ("enolase_3enl",), "weights": (1.0, 2.0)}, "one weight each"),
    ({"amplitude_contrast": 1.5}, "amplitude_contrast"),
])
def test_bad_parameters_are_one_line_errors(change: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as error:
        dataclasses.replace(SpecimenParams(), **change)
    assert "\n" not in str(error.value)


def test_parameters_round_trip_through_a_dict() -> None:
    assert SpecimenParams.from_dict(SMALL.to_dict()) == SMALL
    with pytest.raises(ConfigError, match="unknown parameter"):
        SpecimenParams.from_dict({"dose": 40})


def _rotations(n: int) -> np.ndarray:
    from napari_cryoden.simulation.particles import random_rotations

    return random_rotations(np.random.default_rng(0), n)

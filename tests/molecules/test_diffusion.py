"""Tests of casbo_bench.molecules.diffusion: schedule, respaced posterior, sampler, noise hook."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.diffusion import (
    N_FEATURES,
    DiffusionError,
    EquivariantDiffusion,
    FixedSizeSampler,
    SamplingSchedule,
    gamma_schedule,
    polynomial_alphas2,
    reverse_coefficients,
)
from casbo_bench.molecules.egnn import EGNNDenoiser
from tests.molecules.structures import SUBSET

T = 1000


def _tiny_diffusion(dtype: torch.dtype = torch.float64) -> EquivariantDiffusion:
    torch.manual_seed(0)
    return EquivariantDiffusion(EGNNDenoiser(hidden=16, n_blocks=2)).to(dtype)


class GaussianOracle(nn.Module):
    """The exact noise predictor for data x ~ N(0, c^2 P) (P: the zero-centre-of-mass projector).

    z_t ~ N(0, (alpha_t^2 c^2 + sigma_t^2) P), so E[eps | z_t] = sigma_t z_t / (alpha_t^2 c^2 +
    sigma_t^2) on the position and type parts alike.
    """

    def __init__(self, gamma: Tensor, scale: float) -> None:
        super().__init__()
        self.gamma = gamma
        self.scale = scale
        self.dtype_anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, z: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        gamma = self.gamma[torch.round(t * T).long()].view(-1, 1, 1)
        alpha2, sigma2 = torch.sigmoid(-gamma), torch.sigmoid(gamma)
        return sigma2.sqrt() * z / (alpha2 * self.scale**2 + sigma2)


def test_polynomial_schedule_values() -> None:
    precision = 1e-5
    alphas2 = polynomial_alphas2(T, power=2.0, precision=precision)
    assert alphas2.shape == (T + 1,)
    assert np.all(np.diff(alphas2) < 0)
    assert alphas2[0] == pytest.approx(1.0 - precision, abs=1e-12)
    assert precision <= alphas2[-1] < 2 * precision
    # midpoint: u = 500 * 1001 / 1000, u / (T + 1) = 1/2, so alpha^2 = (1 - 1/4)^2
    assert alphas2[500] == pytest.approx((1 - 2 * precision) * 0.5625 + precision, rel=1e-12)
    gamma = gamma_schedule(T)
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(gamma)), alphas2, rtol=1e-10)


def test_respaced_schedule_shape_and_injections() -> None:
    schedule = SamplingSchedule.respaced(T, 50)
    assert schedule.timesteps[0] == T and schedule.timesteps[-1] == 0
    assert len(schedule.timesteps) == 51
    assert np.all(np.diff(schedule.timesteps) < 0)
    assert (schedule.n_steps, schedule.n_injections) == (50, 52)
    assert SamplingSchedule.respaced(T, 50, final_noise=False).n_injections == 51
    full = SamplingSchedule.respaced(T, T)
    assert full.timesteps == tuple(range(T, -1, -1))
    with pytest.raises(DiffusionError, match="1 <= steps <= T"):
        SamplingSchedule.respaced(T, T + 1)


def test_full_schedule_coefficients_match_the_direct_formulas() -> None:
    alphas2 = polynomial_alphas2(T)
    sigmas2 = 1.0 - alphas2
    coefficients = reverse_coefficients(
        torch.from_numpy(gamma_schedule(T)), SamplingSchedule.respaced(T, T)
    )
    t = np.arange(T, 0, -1)
    s = t - 1
    alpha2_ts = alphas2[t] / alphas2[s]
    np.testing.assert_allclose(coefficients.alpha_ts.numpy() ** 2, alpha2_ts, rtol=1e-10)
    np.testing.assert_allclose(
        coefficients.sigma2_ts.numpy(), sigmas2[t] - alpha2_ts * sigmas2[s], rtol=1e-6, atol=1e-15
    )
    np.testing.assert_allclose(coefficients.sigma_t.numpy() ** 2, sigmas2[t], rtol=1e-10)


def test_respaced_coefficients_compose_the_full_steps() -> None:
    gamma = torch.from_numpy(gamma_schedule(T))
    full = reverse_coefficients(gamma, SamplingSchedule.respaced(T, T))
    respaced = reverse_coefficients(gamma, SamplingSchedule.respaced(T, 7))
    # full[i] is the step T - i -> T - i - 1
    for t, s, alpha_ts, sigma2_ts in zip(
        respaced.t.tolist(), respaced.s.tolist(), respaced.alpha_ts, respaced.sigma2_ts, strict=True
    ):
        steps = range(T - t, T - s)
        alpha, sigma2 = 1.0, 0.0
        for i in reversed(steps):  # from s upwards to t
            alpha = alpha * full.alpha_ts[i].item()
            sigma2 = full.alpha_ts[i].item() ** 2 * sigma2 + full.sigma2_ts[i].item()
        assert alpha_ts.item() == pytest.approx(alpha, rel=1e-9)
        assert sigma2_ts.item() == pytest.approx(sigma2, rel=1e-7)


def _reference_sampler(
    denoise: nn.Module, noise: np.ndarray, timesteps: tuple[int, ...]
) -> np.ndarray:
    """DDPM ancestral sampling written with the posterior q(z_s | z_t, x_hat) in its usual form.

    mean = alpha_{t|s} sigma_s^2 / sigma_t^2 z_t + alpha_s sigma_{t|s}^2 / sigma_t^2 x_hat,
    variance = sigma_{t|s}^2 sigma_s^2 / sigma_t^2, with x_hat = (z_t - sigma_t eps) / alpha_t;
    all from the alpha^2 table, no gamma. ``noise`` is ``B x K x n x 7`` with all atoms real.
    """
    alphas2 = polynomial_alphas2(T)

    def project(xi: np.ndarray) -> np.ndarray:
        xi = xi.copy()
        xi[..., :3] -= xi[..., :3].mean(axis=1, keepdims=True)
        return xi

    def eps(z: np.ndarray, t: int) -> np.ndarray:
        mask = torch.ones(z.shape[:2], dtype=torch.bool)
        time = torch.full((z.shape[0],), t / T, dtype=torch.float64)
        return denoise(torch.from_numpy(z), time, mask).detach().numpy()

    z = project(noise[:, 0])
    for i, (t, s) in enumerate(itertools.pairwise(timesteps)):
        alpha_t, alpha_s = np.sqrt(alphas2[t]), np.sqrt(alphas2[s])
        sigma2_t, sigma2_s = 1 - alphas2[t], 1 - alphas2[s]
        alpha_ts = alpha_t / alpha_s
        sigma2_ts = sigma2_t - alpha_ts**2 * sigma2_s
        x_hat = (z - np.sqrt(sigma2_t) * eps(z, t)) / alpha_t
        mean = alpha_ts * sigma2_s / sigma2_t * z + alpha_s * sigma2_ts / sigma2_t * x_hat
        z = mean + np.sqrt(sigma2_ts * sigma2_s / sigma2_t) * project(noise[:, i + 1])
    alpha_0, sigma_0 = np.sqrt(alphas2[0]), np.sqrt(1 - alphas2[0])
    x = (z - sigma_0 * eps(z, 0)) / alpha_0 + sigma_0 / alpha_0 * project(noise[:, -1])
    return x


@pytest.mark.parametrize("n_steps", [1, 4, 25])
def test_sampler_matches_the_textbook_posterior(n_steps: int) -> None:
    diffusion = _tiny_diffusion()
    # A denoiser whose output depends on t and on z non-linearly, so every coefficient matters.
    for block in diffusion.denoiser.egnn.blocks:
        nn.init.xavier_uniform_(block.position_update.weight_out.weight, gain=0.3)
    sampler = FixedSizeSampler(diffusion, n_atoms=5, n_steps=n_steps)
    noise = torch.randn(
        3,
        sampler.n_injections,
        5,
        7,
        generator=torch.Generator().manual_seed(5),
        dtype=torch.float64,
    )
    samples = sampler(noise)
    with torch.no_grad():
        expected = _reference_sampler(diffusion.denoiser, noise.numpy(), sampler.schedule.timesteps)
    expected_positions = expected[..., :3] - expected[..., :3].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(samples.positions.numpy(), expected_positions, rtol=1e-8, atol=1e-8)
    assert np.array_equal(samples.atom_types.numpy(), expected[..., 3:].argmax(axis=-1))


def test_schedule_must_descend_to_zero() -> None:
    with pytest.raises(DiffusionError, match="strictly decreasing"):
        SamplingSchedule((1000, 500, 500, 0))
    with pytest.raises(DiffusionError, match="end at t = 0"):
        SamplingSchedule((1000, 500))


@pytest.mark.parametrize(("n_steps", "tolerance"), [(T, 0.04), (100, 0.04)])
def test_sampler_reproduces_a_gaussian_with_its_exact_denoiser(
    n_steps: int, tolerance: float
) -> None:
    diffusion = EquivariantDiffusion(EGNNDenoiser(hidden=4, n_blocks=1)).to(torch.float64)
    scale = 1.7
    diffusion.denoiser = GaussianOracle(diffusion.gamma, scale)  # type: ignore[assignment]
    sampler = FixedSizeSampler(diffusion, n_atoms=6, n_steps=n_steps, final_noise=False)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(400, sampler.n_injections, 6, N_FEATURES, generator=generator)
    positions = sampler(noise.to(torch.float64)).positions
    variance = (positions**2).sum().item() / (400 * (6 - 1) * 3)
    assert variance == pytest.approx(scale**2, rel=tolerance)


def test_noise_hook_sizes_and_shapes() -> None:
    diffusion = _tiny_diffusion()
    sampler = FixedSizeSampler(diffusion, n_atoms=9, n_steps=50)
    assert (sampler.n_injections, sampler.dim) == (52, 63)
    noise = torch.randn(
        3, 52, 9, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    samples = sampler(noise)
    assert samples.positions.shape == (3, 9, 3)
    assert samples.atom_types.shape == (3, 9)
    assert samples.mask.all()
    flat = sampler(noise.reshape(3, 52, 63).numpy())
    assert torch.equal(flat.positions, samples.positions)
    with pytest.raises(DiffusionError, match=r"\(B, 52, 9, 7\) or \(B, 52, 63\)"):
        sampler(noise[:, :51])
    with pytest.raises(DiffusionError, match="at least one atom"):
        FixedSizeSampler(diffusion, n_atoms=0)


def test_sampler_is_deterministic_batched_and_keeps_zero_centre_of_mass() -> None:
    diffusion = _tiny_diffusion()
    sampler = FixedSizeSampler(diffusion, n_atoms=7, n_steps=20, batch_size=2)
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(5, sampler.n_injections, 7, 7, generator=generator, dtype=torch.float64)
    first, again = sampler(noise), sampler(noise.clone())
    assert torch.equal(first.positions, again.positions)
    assert torch.equal(first.atom_types, again.atom_types)
    one_by_one = torch.cat([sampler(noise[i : i + 1]).positions for i in range(5)])
    torch.testing.assert_close(one_by_one, first.positions, rtol=1e-10, atol=1e-10)
    scale = first.positions.abs().amax(dim=(1, 2))
    assert (first.positions.sum(dim=1).abs().amax(dim=1) / scale).max() < 1e-12
    other = sampler(noise + 0.1)
    assert not torch.allclose(other.positions, first.positions)
    # a shift of the injected position noise along the centre of mass is projected away
    shifted = noise.clone()
    shifted[..., :3] += torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(sampler(shifted).positions, first.positions)


def test_unguided_sampling_draws_counts_from_the_histogram() -> None:
    diffusion = _tiny_diffusion(torch.float32)
    histogram = np.array([0, 0, 0, 5, 0, 2, 0, 0, 0, 0])
    samples = diffusion.sample(
        12, histogram, torch.Generator().manual_seed(3), n_steps=5, batch_size=5
    )
    assert samples.positions.shape == (12, 9, 3)
    assert set(samples.num_atoms.tolist()) <= {3, 5}
    assert torch.equal(samples.atom_types >= 0, samples.mask)
    assert samples.positions[~samples.mask].abs().max() == 0.0
    again = diffusion.sample(
        12, histogram, torch.Generator().manual_seed(3), n_steps=5, batch_size=5
    )
    assert torch.equal(again.positions, samples.positions)
    with pytest.raises(DiffusionError, match="larger than max_atoms"):
        diffusion.sample(2, np.ones(11), torch.Generator(), n_steps=2)


def test_loss_is_a_per_molecule_mse_that_ignores_padding() -> None:
    diffusion = _tiny_diffusion()
    data = load_dataset(SUBSET).select(range(8))
    positions = torch.from_numpy(data.positions).to(torch.float64)
    one_hot = torch.from_numpy(data.one_hot)
    mask = torch.from_numpy(data.mask)
    generator = torch.Generator().manual_seed(4)
    t = torch.randint(0, T + 1, (8,), generator=generator)
    noise = torch.randn(8, 9, N_FEATURES, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        loss = diffusion.loss(positions, one_hot, mask, t, noise)
        junk = torch.where(mask.unsqueeze(-1), noise, 100.0)
        padded_positions = torch.where(mask.unsqueeze(-1), positions, -50.0)
        loss_padded = diffusion.loss(padded_positions, one_hot, mask, t, junk)
    assert loss.shape == (8,)
    assert torch.all(loss >= 0)
    torch.testing.assert_close(loss_padded, loss)

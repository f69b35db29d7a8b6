"""Tests of casbo_bench.molecules.egnn: E(3) equivariance, masking, zero centre of mass."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from casbo_bench.molecules.data import load_dataset
from casbo_bench.molecules.egnn import (
    EGNN,
    EGNNDenoiser,
    EquivarianceError,
    assert_equivariant,
    equivariance_errors,
    random_orthogonal,
    remove_mean,
)
from tests.molecules.structures import SUBSET


def _denoiser(dtype: torch.dtype) -> EGNNDenoiser:
    """A small denoiser whose position updates are not near zero (unlike the trained init)."""
    torch.manual_seed(0)
    denoiser = EGNNDenoiser(hidden=32, n_blocks=3, n_sublayers=2)
    for block in denoiser.egnn.blocks:
        nn.init.xavier_uniform_(block.position_update.weight_out.weight, gain=0.5)
    return denoiser.to(dtype)


def _batch(dtype: torch.dtype, size: int = 16) -> tuple[Tensor, Tensor, Tensor]:
    data = load_dataset(SUBSET).select(range(size))
    mask = torch.from_numpy(data.mask)
    positions = torch.from_numpy(data.positions).to(dtype)
    noise = torch.randn(size, 9, 3, generator=torch.Generator().manual_seed(1), dtype=dtype)
    positions = remove_mean(positions + 0.3 * noise, mask)
    types = 0.25 * torch.from_numpy(data.one_hot).to(dtype)
    z = torch.cat([positions, types], dim=-1)
    t = torch.linspace(0.0, 1.0, size, dtype=dtype)
    return z, t, mask


def _relative(errors: tuple[float, float], output: Tensor) -> tuple[float, float]:
    return errors[0] / output[..., :3].abs().max().item(), errors[1] / output[
        ..., 3:
    ].abs().max().item()


@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_outputs_transform_with_rotation_and_translation(
    dtype: torch.dtype, tolerance: float
) -> None:
    denoiser = _denoiser(dtype)
    z, t, mask = _batch(dtype)
    with torch.no_grad():
        output = denoiser(z, t, mask)
    assert output[..., :3].abs().max() > 1e-2  # the position output is not trivially zero
    errors = equivariance_errors(denoiser, z, t, mask, torch.Generator().manual_seed(2))
    position_error, type_error = _relative(errors, output)
    assert position_error < tolerance
    assert type_error < tolerance


def test_assert_equivariant_passes_and_catches_a_broken_network() -> None:
    denoiser = _denoiser(torch.float64)
    z, t, mask = _batch(torch.float64)
    generator = torch.Generator().manual_seed(3)
    assert_equivariant(denoiser, z, t, mask, generator, atol=1e-8)

    class Broken(nn.Module):
        def forward(self, z: Tensor, t: Tensor, mask: Tensor) -> Tensor:
            output = denoiser(z, t, mask)
            shift = torch.tensor([0.1, 0.0, 0.0], dtype=z.dtype)
            return torch.cat([output[..., :3] + shift, output[..., 3:]], dim=-1)

    with pytest.raises(EquivarianceError, match="not E\\(3\\)-equivariant"):
        assert_equivariant(Broken(), z, t, mask, generator, atol=1e-8)


def test_position_noise_has_zero_centre_of_mass_and_padding_is_zero() -> None:
    denoiser = _denoiser(torch.float64)
    z, t, mask = _batch(torch.float64)
    with torch.no_grad():
        output = denoiser(z, t, mask)
    assert output[..., :3].sum(dim=1).abs().max() < 1e-10
    assert output[~mask].abs().max() == 0.0


def test_padding_does_not_change_real_atoms() -> None:
    denoiser = _denoiser(torch.float64)
    z, t, mask = _batch(torch.float64)
    junk = torch.randn(z.shape, generator=torch.Generator().manual_seed(4), dtype=z.dtype)
    padded = torch.where(mask.unsqueeze(-1), z, 10.0 * junk)
    with torch.no_grad():
        clean = denoiser(z, t, mask)
        noisy = denoiser(padded, t, mask)
    torch.testing.assert_close(noisy, clean, rtol=0.0, atol=1e-10)


def test_atom_order_permutes_outputs() -> None:
    denoiser = _denoiser(torch.float64)
    z, t, _ = _batch(torch.float64)
    z, t = z[-4:], t[-4:]
    mask = torch.ones(4, 9, dtype=torch.bool)
    z = torch.cat([remove_mean(z[..., :3], mask), z[..., 3:]], dim=-1)
    order = torch.randperm(9, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        output = denoiser(z, t, mask)
        permuted = denoiser(z[:, order], t, mask)
    torch.testing.assert_close(permuted, output[:, order], rtol=0.0, atol=1e-10)


def test_random_orthogonal() -> None:
    generator = torch.Generator().manual_seed(6)
    q = random_orthogonal(64, generator)
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    torch.testing.assert_close(q @ q.transpose(1, 2), eye)
    determinants = torch.linalg.det(q)
    assert (determinants < 0).any() and (determinants > 0).any()  # reflections included
    proper = random_orthogonal(64, generator, proper=True)
    torch.testing.assert_close(torch.linalg.det(proper), torch.ones(64, dtype=torch.float64))


def test_bad_sizes_raise() -> None:
    with pytest.raises(ValueError, match="n_blocks >= 1"):
        EGNN(5, 5, hidden=16, n_blocks=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_scratch_pass_gives_the_same_bits(dtype: torch.dtype) -> None:
    denoiser = _denoiser(dtype)
    z, t, mask = _batch(dtype)  # padded molecules included
    with torch.no_grad():
        plain = denoiser(z, t, mask)
        scratch = denoiser.scratch(len(z) + 3, 9)
        reused = denoiser(z, t, mask, scratch.rows(len(z)))
        again = denoiser(z, t, mask, scratch.rows(len(z)))  # the scratch holds the last pass
    trained = denoiser(z, t, mask)  # with gradients: the out-of-place ops training runs
    assert torch.equal(reused, plain) and torch.equal(again, plain)
    assert torch.equal(trained.detach(), plain)
    assert scratch.first.dtype == dtype and scratch.first.shape == (len(z) + 3, 9, 9, 32)


def test_the_scratch_is_refused_with_gradients_or_another_shape() -> None:
    denoiser = _denoiser(torch.float64)
    z, t, mask = _batch(torch.float64, size=4)
    with pytest.raises(ValueError, match=r"torch\.no_grad"):
        denoiser(z, t, mask, denoiser.scratch(4, 9))
    with torch.no_grad(), pytest.raises(ValueError, match="needs"):
        denoiser(z, t, mask, denoiser.scratch(5, 9))
    with torch.no_grad(), pytest.raises(ValueError, match="float32"):
        denoiser(z, t, mask, _denoiser(torch.float32).scratch(4, 9))


def test_a_partly_frozen_network_trains_through_the_out_of_place_path() -> None:
    # With gradients on, nothing autograd saved may be overwritten, whichever weights train.
    denoiser = _denoiser(torch.float64)
    for name, parameter in denoiser.named_parameters():
        parameter.requires_grad_("attention" in name)
    z, t, mask = _batch(torch.float64, size=4)
    denoiser(z, t, mask).square().sum().backward()
    trained = [p.grad for n, p in denoiser.named_parameters() if "attention" in n]
    assert trained and all(grad is not None and grad.abs().sum() > 0 for grad in trained)

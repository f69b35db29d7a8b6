"""EDM's equivariant diffusion on (positions, atom types), its loss, and its samplers.

A molecule of ``n`` atoms is the state ``z = [z_x, z_h]``, a ``n x (3 + 4)`` array:
positions in Angstrom (zero centre of mass) and one-hot types scaled by ``type_scale`` (0.25).
The forward process is ``z_t = alpha_t z + sigma_t eps`` at integer times t = 0, ..., T with
``alpha_t^2 = sigmoid(-gamma_t)``, ``sigma_t^2 = sigmoid(gamma_t)``; ``eps`` is Gaussian with
its position part projected to the zero-centre-of-mass subspace. The noise schedule is EDM's
``polynomial_2``: ``alpha_t^2 = (1 - (t / (T + 1))^2)^2`` sampled at ``T + 1`` points of
``[0, T + 1]``, step ratios clipped to >= 0.001, then squeezed into ``[precision,
1 - precision]``.

Training minimises the plain mean squared error of the noise prediction with t uniform on
{0, ..., T} (:meth:`EquivariantDiffusion.loss`).

Sampling runs the reverse chain on ``S + 1`` kept times ``T = t_S > ... > t_1 > t_0 = 0``
(:class:`SamplingSchedule`; S = T is the full sampler). Between consecutive kept times
``s < t`` the posterior is exact for any gap:

    alpha_{t|s} = alpha_t / alpha_s,   sigma_{t|s}^2 = sigma_t^2 - alpha_{t|s}^2 sigma_s^2,
    z_s = z_t / alpha_{t|s} - sigma_{t|s}^2 / (alpha_{t|s} sigma_t) eps_theta(z_t, t)
          + (sigma_{t|s} sigma_s / sigma_t) xi.

Finally ``x ~ p(x | z_0)``: ``x = (z_0 - sigma_0 eps_theta(z_0, 0)) / alpha_0 +
(sigma_0 / alpha_0) xi`` and the types are the argmax of the type part.

The noise hook (:func:`sample_from_noise`, :class:`FixedSizeSampler`): every Gaussian vector
the sampler uses comes from one tensor ``noise`` of shape ``B x K x n x 7``, in generation
order (``K = S + 2``):

- ``noise[:, 0]``: the initial latent, ``z_T = xi``;
- ``noise[:, i]`` for ``i = 1, ..., S``: the noise of the reverse step ``t_{S-i+1} -> t_{S-i}``
  (the i-th step taken; the last of them, ``i = S``, produces ``z_0``);
- ``noise[:, S + 1]``: the noise of the final step ``x ~ p(x | z_0)`` (its scale
  ``sigma_0 / alpha_0`` is about 0.003, so it rarely changes the molecule; it is kept so that
  the unguided sampler is EDM's exactly).

The position part of each injected vector is projected to zero centre of mass by the sampler
(``xi_x <- xi_x - mean(xi_x)``): a standard Gaussian in ``R^{n x 3}`` projected this way is the
zero-centre-of-mass Gaussian the model was trained with, so an optimizer can search all of
``R^{n x 7}`` and the projection is part of the dynamics.

Drawn sizes (:class:`DrawnSizeSampler`): every molecule is padded to N = 9 atom slots and its
number of atoms n is read off its own initial latent, ``n = F^{-1}(Phi(u))`` with ``u`` the
latent's (normalized) sum of the first position coordinate over all N slots
(:func:`size_coordinate`), a direction the projection above discards for every n, and ``F``
the cumulative atom-count histogram of the training set (:class:`AtomCountQuantile`). The
rollout stays a deterministic function of its noise; padded slots' noise is masked.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from casbo_bench.errors import UserFacingError
from casbo_bench.molecules.atoms import MAX_ATOMS, N_FEATURES
from casbo_bench.molecules.egnn import EGNNDenoiser, PairScratch, remove_mean

logger = logging.getLogger(__name__)


PAIRWISE_BYTES = 2**22
"""The most bytes of one ``B x N x N x H`` pairwise activation: it sets a denoiser pass's B.

A batch is predicted in passes of :meth:`EquivariantDiffusion.molecules_per_pass` molecules
each (at N = 9, H = 128: 101 in float32, 50 in float64), so a pass's two pairwise scratch
tensors (:class:`~casbo_bench.molecules.egnn.PairScratch`) take at most 8 MiB whatever the
batch (a cap chosen in development runs whose outputs were not kept; the rollout rates by
batch size are in benchmarks/results/rollouts-2026-11-30-quiet.md). Every molecule's
prediction is a function of its own row only, so the split changes no result
beyond the last bits of a matrix product (:meth:`EquivariantDiffusion.sample_from_noise`)."""


class DiffusionError(UserFacingError, ValueError):
    """A diffusion, schedule or sampler was asked for with impossible sizes or inputs."""


def polynomial_alphas2(timesteps: int, power: float = 2.0, precision: float = 1e-5) -> NDArray[Any]:
    """EDM's polynomial noise schedule: a ``T + 1`` float64 array of alpha_t^2, t = 0..T.

    ``alpha^2 = (1 - (u / (T + 1))^power)^2`` at ``u = linspace(0, T + 1, T + 1)``; the step
    ratios ``alpha_t^2 / alpha_{t-1}^2`` are clipped below at 0.001 (so no single step destroys
    the signal) and the result is mapped to ``(1 - 2 precision) alpha^2 + precision``.
    """
    if timesteps < 1 or not 0.0 < precision < 0.5:
        raise DiffusionError(
            f"a schedule needs timesteps >= 1 and 0 < precision < 0.5; got {timesteps}, {precision}"
        )
    steps = timesteps + 1
    u = np.linspace(0.0, steps, steps)
    alphas2 = (1.0 - np.power(u / steps, power)) ** 2
    ratios = np.clip(alphas2 / np.concatenate([[1.0], alphas2[:-1]]), 0.001, 1.0)
    alphas2 = np.cumprod(ratios)
    return (1.0 - 2.0 * precision) * alphas2 + precision


def gamma_schedule(timesteps: int, power: float = 2.0, precision: float = 1e-5) -> NDArray[Any]:
    """gamma_t = -log(alpha_t^2 / sigma_t^2), a ``T + 1`` float64 array (t = 0..T)."""
    alphas2 = polynomial_alphas2(timesteps, power, precision)
    return -(np.log(alphas2) - np.log1p(-alphas2))


@dataclass(frozen=True)
class SamplingSchedule:
    """The kept times of a (possibly respaced) reverse chain.

    Attributes:
        timesteps: the ``S + 1`` kept integer times, descending from T to 0.
        final_noise: whether the last step ``x ~ p(x | z_0)`` injects noise.
    """

    timesteps: tuple[int, ...]
    final_noise: bool = True

    def __post_init__(self) -> None:
        kept = self.timesteps
        if len(kept) < 2 or any(t <= s for t, s in itertools.pairwise(kept)):
            raise DiffusionError(
                f"a schedule keeps at least two strictly decreasing times; got {kept}"
            )
        if kept[-1] != 0:
            raise DiffusionError(
                f"a schedule must end at t = 0 (the final step samples p(x | z_0)); got {kept}"
            )

    @classmethod
    def respaced(cls, total_steps: int, n_steps: int, final_noise: bool = True) -> SamplingSchedule:
        """``S = n_steps`` steps evenly spaced in t: ``round(linspace(T, 0, S + 1))``."""
        if not 1 <= n_steps <= total_steps:
            raise DiffusionError(
                f"a respaced schedule takes 1 <= steps <= T = {total_steps}; got {n_steps}"
            )
        kept = np.rint(np.linspace(total_steps, 0, n_steps + 1)).astype(np.int64)
        return cls(tuple(int(t) for t in kept), final_noise)

    @property
    def n_steps(self) -> int:
        """S, the number of reverse transitions."""
        return len(self.timesteps) - 1

    @property
    def n_injections(self) -> int:
        """K, the number of injected noise vectors: S + 2 (S + 1 without the final noise)."""
        return self.n_steps + (2 if self.final_noise else 1)

    def pairs(self) -> Iterator[tuple[int, int]]:
        """The reverse transitions ``(t, s)`` in the order they are taken."""
        yield from zip(self.timesteps[:-1], self.timesteps[1:], strict=True)


@dataclass(frozen=True)
class ReverseCoefficients:
    """Coefficients of the S reverse transitions ``t -> s`` of a schedule, in order.

    Each attribute is a ``S`` float64 tensor: ``t`` and ``s`` (integer times), ``alpha_ts``
    (alpha_{t|s}), ``sigma2_ts`` (sigma_{t|s}^2), ``sigma_t``, ``sigma_s``.
    """

    t: Tensor
    s: Tensor
    alpha_ts: Tensor
    sigma2_ts: Tensor
    sigma_t: Tensor
    sigma_s: Tensor

    @property
    def noise_scale(self) -> Tensor:
        """sigma_{t|s} sigma_s / sigma_t, the standard deviation of each step's noise."""
        return self.sigma2_ts.sqrt() * self.sigma_s / self.sigma_t

    @property
    def eps_scale(self) -> Tensor:
        """sigma_{t|s}^2 / (alpha_{t|s} sigma_t), the weight of the predicted noise."""
        return self.sigma2_ts / (self.alpha_ts * self.sigma_t)


def reverse_coefficients(gamma: Tensor, schedule: SamplingSchedule) -> ReverseCoefficients:
    """The posterior coefficients between consecutive kept times, in float64.

    With ``gamma`` the ``T + 1`` table of :func:`gamma_schedule`:
    ``sigma_{t|s}^2 = -expm1(softplus(gamma_s) - softplus(gamma_t))`` and
    ``log alpha_{t|s} = (log sigmoid(-gamma_t) - log sigmoid(-gamma_s)) / 2``, the forms that
    stay accurate when t and s are close.
    """
    gamma = gamma.to(torch.float64)
    t = torch.tensor(schedule.timesteps[:-1], dtype=torch.long)
    s = torch.tensor(schedule.timesteps[1:], dtype=torch.long)
    gamma_t, gamma_s = gamma[t], gamma[s]
    softplus = nn.functional.softplus
    logsigmoid = nn.functional.logsigmoid
    return ReverseCoefficients(
        t=t,
        s=s,
        alpha_ts=torch.exp(0.5 * (logsigmoid(-gamma_t) - logsigmoid(-gamma_s))),
        sigma2_ts=-torch.expm1(softplus(gamma_s) - softplus(gamma_t)),
        sigma_t=torch.sigmoid(gamma_t).sqrt(),
        sigma_s=torch.sigmoid(gamma_s).sqrt(),
    )


def project_noise(noise: Tensor, mask: Tensor) -> Tensor:
    """Project ``B x N x 7`` Gaussian noise to the model's state space.

    The position part goes to zero centre of mass over the real atoms; padding is zeroed.
    """
    node_mask = mask.to(noise.dtype).unsqueeze(-1)
    return torch.cat([remove_mean(noise[..., :3], mask), noise[..., 3:] * node_mask], dim=-1)


def histogram_weights(atom_count_histogram: NDArray[Any] | Tensor, max_atoms: int) -> Tensor:
    """The float64 weights of atom counts 0..min(len - 1, N) of a histogram, 0 at n = 0.

    Raises:
        DiffusionError: negative or all-zero weights, or weight beyond ``max_atoms`` = N.
    """
    weights = torch.as_tensor(np.asarray(atom_count_histogram), dtype=torch.float64)
    if weights.ndim != 1 or (weights < 0).any() or weights[1:].sum() <= 0:
        raise DiffusionError("the atom-count histogram must be non-negative counts, not all 0")
    if len(weights) > max_atoms + 1 and weights[max_atoms + 1 :].sum() > 0:
        raise DiffusionError(f"the histogram has molecules larger than max_atoms={max_atoms}")
    weights = weights[: max_atoms + 1].clone()
    weights[0] = 0.0
    return weights


@dataclass(frozen=True)
class MoleculeSamples:
    """Generated molecules, padded to N atoms.

    Attributes:
        positions: a ``B x N x 3`` float tensor (Angstrom, zero centre of mass, 0 on padding).
        atom_types: a ``B x N`` long tensor of indices into (C, N, O, F), -1 on padding.
        mask: a ``B x N`` bool tensor, true on real atoms.
    """

    positions: Tensor
    atom_types: Tensor
    mask: Tensor

    @property
    def num_atoms(self) -> Tensor:
        """A ``B`` long tensor of atom counts."""
        return self.mask.sum(dim=1)

    @classmethod
    def concatenate(cls, parts: list[MoleculeSamples]) -> MoleculeSamples:
        """The molecules of ``parts`` (batches of one padded size), in order."""
        return cls(
            positions=torch.cat([part.positions for part in parts]),
            atom_types=torch.cat([part.atom_types for part in parts]),
            mask=torch.cat([part.mask for part in parts]),
        )


class EquivariantDiffusion(nn.Module):
    """EDM's E(3)-equivariant diffusion over positions and one-hot atom types.

    Args:
        denoiser: the noise predictor eps_theta(z_t, t / T, mask).
        timesteps: T.
        noise_precision: the schedule's precision (alpha_t^2 in [p, 1 - p]).
        type_scale: the factor on one-hot types inside the state (EDM: 1/4).
    """

    gamma: Tensor

    def __init__(
        self,
        denoiser: EGNNDenoiser,
        timesteps: int = 1000,
        noise_precision: float = 1e-5,
        type_scale: float = 0.25,
    ) -> None:
        super().__init__()
        self.denoiser = denoiser
        self.timesteps = timesteps
        self.noise_precision = noise_precision
        self.type_scale = type_scale
        gamma = torch.from_numpy(gamma_schedule(timesteps, 2.0, noise_precision))
        self.register_buffer("gamma", gamma, persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        """The denoiser's floating-point type: sampling runs in it."""
        return next(self.denoiser.parameters()).dtype

    def with_dtype(self, dtype: torch.dtype) -> EquivariantDiffusion:
        """This model with its denoiser in ``dtype``: itself if it is already, else a copy.

        The copy's weights are this model's converted (float32 -> float64 is exact); the
        schedule ``gamma`` stays float64, on the same device.
        """
        if dtype == self.dtype:
            return self
        denoiser = copy.deepcopy(self.denoiser).to(dtype)
        converted = EquivariantDiffusion(
            denoiser, self.timesteps, self.noise_precision, self.type_scale
        )
        return converted.to(self.gamma.device).train(self.training)

    def molecules_per_pass(self, n_atoms: int) -> int:
        """B of one denoiser pass: the most molecules of ``n_atoms`` slots whose ``B x N x N x
        H`` pairwise activation fits :data:`PAIRWISE_BYTES` (at least 1)."""
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        per_molecule = n_atoms * n_atoms * self.denoiser.hidden * itemsize
        return max(1, PAIRWISE_BYTES // per_molecule)

    def scratch(self, batch: int, n_atoms: int) -> PairScratch | None:
        """Pairwise scratch for :meth:`predict_noise` on up to ``batch`` molecules of
        ``n_atoms`` slots; None for a denoiser other than the EGNN (a test's stand-in)."""
        if not isinstance(self.denoiser, EGNNDenoiser):
            return None
        return self.denoiser.scratch(min(batch, self.molecules_per_pass(n_atoms)), n_atoms)

    @torch.no_grad()
    def predict_noise(
        self, z: Tensor, time: Tensor, mask: Tensor, scratch: PairScratch | None = None
    ) -> Tensor:
        """eps_theta(z, t) of a ``B x N x 7`` batch, in passes of :meth:`molecules_per_pass`.

        Args:
            z: a ``B x N x 7`` tensor of states.
            time: a ``B`` tensor of times t / T.
            mask: a ``B x N`` tensor, 1 on real atoms.
            scratch: :meth:`scratch` of at least B molecules (a sampler reuses one across its
                steps), or None to allocate it here.

        Returns:
            The ``B x N x 7`` predictions; row b depends on row b of the inputs only.
        """
        batch, n_atoms = mask.shape
        if not isinstance(self.denoiser, EGNNDenoiser) or batch == 0:
            return self.denoiser(z, time, mask)
        per_pass = self.molecules_per_pass(n_atoms)
        scratch = self.scratch(batch, n_atoms) if scratch is None else scratch
        assert scratch is not None
        parts = []
        for start in range(0, batch, per_pass):
            stop = min(start + per_pass, batch)
            rows = slice(start, stop)
            parts.append(self.denoiser(z[rows], time[rows], mask[rows], scratch.rows(stop - start)))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state(self, positions: Tensor, one_hot: Tensor, mask: Tensor) -> Tensor:
        """The ``B x N x 7`` clean state ``[x - mean(x), type_scale * one_hot]``, masked."""
        node_mask = mask.to(positions.dtype).unsqueeze(-1)
        return torch.cat(
            [remove_mean(positions, mask), self.type_scale * one_hot.to(positions) * node_mask],
            dim=-1,
        )

    def loss(
        self,
        positions: Tensor,
        one_hot: Tensor,
        mask: Tensor,
        t: Tensor,
        noise: Tensor,
    ) -> Tensor:
        """Per-molecule mean squared error of the noise prediction, a ``B`` tensor.

        ``|| eps - eps_theta(alpha_t z + sigma_t eps, t) ||^2 / (7 n)`` with ``eps`` the
        projected ``noise`` and n the molecule's number of atoms.

        Args:
            positions: a ``B x N x 3`` tensor.
            one_hot: a ``B x N x 4`` tensor.
            mask: a ``B x N`` tensor, 1 on real atoms.
            t: a ``B`` long tensor of integer times in {0, ..., T}.
            noise: a ``B x N x 7`` standard Gaussian tensor (projected here).
        """
        z = self.state(positions, one_hot, mask)
        eps = project_noise(noise.to(z), mask)
        gamma_t = self.gamma[t].to(z.dtype).view(-1, 1, 1)
        z_t = torch.sigmoid(-gamma_t).sqrt() * z + torch.sigmoid(gamma_t).sqrt() * eps
        predicted = self.denoiser(z_t, t.to(z.dtype) / self.timesteps, mask)
        squared = ((predicted - eps) ** 2).sum(dim=(1, 2))
        n_atoms = mask.to(z.dtype).sum(dim=1).clamp_min(1.0)
        return squared / (N_FEATURES * n_atoms)

    @torch.no_grad()
    def sample_from_noise(
        self, noise: Tensor, mask: Tensor, schedule: SamplingSchedule
    ) -> MoleculeSamples:
        """Run the reverse chain with every injected noise given (the noise hook).

        Args:
            noise: a ``B x K x N x 7`` tensor in generation order (module docstring), K =
                ``schedule.n_injections``.
            mask: a ``B x N`` tensor, 1 on real atoms.
            schedule: the kept times.

        Returns:
            The molecules; a deterministic function of ``noise`` and ``mask``, row by row:
            molecule b depends on ``noise[b]`` and ``mask[b]`` alone, not on the batch (to
            the last bits of a matrix product: tested to 1e-10 in float64).
        """
        batch, n_injections, n_atoms, n_features = noise.shape
        if n_injections != schedule.n_injections or n_features != N_FEATURES:
            raise DiffusionError(
                f"the sampler with {schedule.n_steps} steps takes noise of shape "
                f"(B, {schedule.n_injections}, N, {N_FEATURES}); got {tuple(noise.shape)}"
            )
        if mask.shape != (batch, n_atoms):
            raise DiffusionError(
                f"mask {tuple(mask.shape)} does not match noise {(batch, n_atoms)}"
            )
        if max(schedule.timesteps) > self.timesteps:
            raise DiffusionError(
                f"schedule reaches t = {max(schedule.timesteps)} > T = {self.timesteps}"
            )
        dtype = self.dtype
        device = self.gamma.device
        noise = noise.to(device=device, dtype=dtype)
        mask = mask.to(device=device)
        coefficients = reverse_coefficients(self.gamma.cpu(), schedule)
        alpha_ts = coefficients.alpha_ts.tolist()
        eps_scale = coefficients.eps_scale.tolist()
        noise_scale = coefficients.noise_scale.tolist()
        scratch = self.scratch(batch, n_atoms)
        z = project_noise(noise[:, 0], mask)
        for i, (t, _) in enumerate(schedule.pairs()):
            time = torch.full((batch,), t / self.timesteps, dtype=dtype, device=device)
            eps = self.predict_noise(z, time, mask, scratch)
            z = (
                z / alpha_ts[i]
                - eps_scale[i] * eps
                + noise_scale[i] * project_noise(noise[:, i + 1], mask)
            )
            # Re-projection keeps the centre of mass at zero against rounding drift.
            z = torch.cat([remove_mean(z[..., :3], mask), z[..., 3:]], dim=-1)
        gamma_0 = self.gamma[0].to(torch.float64)
        alpha_0 = torch.sigmoid(-gamma_0).sqrt().item()
        sigma_0 = torch.sigmoid(gamma_0).sqrt().item()
        time = torch.zeros(batch, dtype=dtype, device=device)
        x = (z - sigma_0 * self.predict_noise(z, time, mask, scratch)) / alpha_0
        if schedule.final_noise:
            x = x + (sigma_0 / alpha_0) * project_noise(noise[:, -1], mask)
        positions = remove_mean(x[..., :3], mask)
        valid = mask.to(torch.bool)
        atom_types = torch.where(valid, x[..., 3:].argmax(dim=-1), -1)
        return MoleculeSamples(positions=positions, atom_types=atom_types, mask=valid)

    @torch.no_grad()
    def sample(
        self,
        n_samples: int,
        atom_count_histogram: NDArray[Any] | Tensor,
        generator: torch.Generator,
        n_steps: int | None = None,
        batch_size: int = 500,
        max_atoms: int = 9,
    ) -> MoleculeSamples:
        """Unguided samples: atom counts from the histogram, every noise standard Gaussian.

        Args:
            n_samples: number of molecules.
            atom_count_histogram: counts (or weights) of molecules with n atoms at index n.
            generator: a CPU generator; all randomness (counts, noise) is drawn from it on the
                CPU, so samples do not depend on the device.
            n_steps: S, the number of reverse steps (None: the full T).
            batch_size: molecules drawn and sampled per call of :meth:`sample_from_noise`.
            max_atoms: N, the padded size (at least the largest count with nonzero weight).

        Returns:
            ``n_samples`` molecules padded to ``max_atoms``.
        """
        weights = histogram_weights(atom_count_histogram, max_atoms)
        schedule = SamplingSchedule.respaced(
            self.timesteps, self.timesteps if n_steps is None else n_steps
        )
        counts = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
        parts = []
        for start in range(0, n_samples, batch_size):
            chunk = counts[start : start + batch_size]
            mask = torch.arange(max_atoms).unsqueeze(0) < chunk.unsqueeze(1)
            noise = torch.randn(
                len(chunk), schedule.n_injections, max_atoms, N_FEATURES, generator=generator
            )
            parts.append(self.sample_from_noise(noise, mask, schedule))
            logger.info("sampled %d of %d molecules", start + len(chunk), n_samples)
        return MoleculeSamples.concatenate(parts)


def build_diffusion(options: Mapping[str, Any], seed: int) -> EquivariantDiffusion:
    """The diffusion model of ``options``, its weights initialised from ``seed``.

    Args:
        options: ``hidden``, ``n_blocks`` and ``n_sublayers`` of the denoiser, ``timesteps``
            and ``noise_precision`` of the diffusion (what a checkpoint records).
        seed: seeds the initialisation inside a forked RNG, so global state is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        denoiser = EGNNDenoiser(
            hidden=options["hidden"],
            n_blocks=options["n_blocks"],
            n_sublayers=options["n_sublayers"],
        )
    return EquivariantDiffusion(
        denoiser, timesteps=options["timesteps"], noise_precision=options["noise_precision"]
    )


class FixedSizeSampler:
    """The noise hook for molecules of exactly ``n_atoms`` atoms: noise in, molecules out.

    A rollout consumes K = ``n_injections`` noise vectors of size d = ``dim`` = 7 n (module
    docstring: initial latent, one per reverse step, one for ``p(x | z_0)``), so a black-box
    optimizer searches ``R^{K x d}`` and the unguided sampler draws each vector from N(0, I).

    Precision: the chain runs in ``dtype``, by default the model's own (float32 for the
    stored checkpoint); float64 runs a converted copy of the same weights at about half the
    speed. Measured at n = 9, S = 20 on 500 N(0, I) noises (``benchmarks/rollouts.py``),
    float32 against float64: the same atom types and the same rebuilt molecule (canonical
    SMILES) for all 500, atoms displaced by at most 2.9e-4 Angstrom (median over rollouts of
    the largest displacement 3e-6), hence QED scores identical. Within one precision a
    rollout does not depend on its batch: to 1e-10 Angstrom in float64, about 1e-5 in
    float32 (the float32 products round a row differently with the number of rows).

    Args:
        diffusion: the model.
        n_atoms: n, the molecule size.
        n_steps: S (None: the full T).
        final_noise: whether ``p(x | z_0)`` injects noise.
        batch_size: molecules per call of the reverse chain (a call splits its batch again
            into denoiser passes: :data:`PAIRWISE_BYTES`).
        dtype: ``torch.float32`` or ``torch.float64``, or None for the model's own.

    >>> sampler = FixedSizeSampler(diffusion, n_atoms=9, n_steps=50)  # doctest: +SKIP
    >>> sampler.n_injections, sampler.dim  # doctest: +SKIP
    (52, 63)
    """

    def __init__(
        self,
        diffusion: EquivariantDiffusion,
        n_atoms: int,
        n_steps: int | None = None,
        final_noise: bool = True,
        batch_size: int = 1000,
        dtype: torch.dtype | None = None,
    ) -> None:
        if n_atoms < 1:
            raise DiffusionError(f"a molecule needs at least one atom; got n_atoms={n_atoms}")
        if dtype not in (None, torch.float32, torch.float64):
            raise DiffusionError(f"a sampler runs in float32 or float64; got {dtype}")
        self.diffusion = diffusion if dtype is None else diffusion.with_dtype(dtype)
        self.n_atoms = n_atoms
        self.schedule = SamplingSchedule.respaced(
            diffusion.timesteps,
            diffusion.timesteps if n_steps is None else n_steps,
            final_noise,
        )
        self.batch_size = batch_size

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type the reverse chain runs in (the denoiser's)."""
        return self.diffusion.dtype

    @property
    def n_injections(self) -> int:
        """K, the number of injected noise vectors per rollout."""
        return self.schedule.n_injections

    @property
    def dim(self) -> int:
        """d = 7 n, the size of each injected noise vector (positions, then types, per atom)."""
        return self.n_atoms * N_FEATURES

    def mask(self, latent: Tensor) -> Tensor:
        """The ``B x n`` bool mask of real atoms of the molecules with initial latents
        ``latent`` (``B x n x 7``): every atom is real at a fixed size."""
        return torch.ones(latent.shape[0], self.n_atoms, dtype=torch.bool, device=latent.device)

    def __call__(self, noise: Tensor | NDArray[Any]) -> MoleculeSamples:
        """Molecules from a ``B x K x n x 7`` (or ``B x K x d``) noise tensor, batched."""
        noise = torch.as_tensor(noise)
        if noise.ndim == 3:
            noise = noise.reshape(*noise.shape[:2], self.n_atoms, N_FEATURES)
        expected = (self.n_injections, self.n_atoms, N_FEATURES)
        if noise.ndim != 4 or tuple(noise.shape[1:]) != expected:
            raise DiffusionError(
                f"this sampler takes noise of shape (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}) or (B, {expected[0]}, {self.dim}); got {tuple(noise.shape)}"
            )
        parts = []
        for start in range(0, noise.shape[0], self.batch_size):
            chunk = noise[start : start + self.batch_size]
            parts.append(
                self.diffusion.sample_from_noise(chunk, self.mask(chunk[:, 0]), self.schedule)
            )
        return MoleculeSamples.concatenate(parts)


def size_coordinate(latent: Tensor) -> Tensor:
    """The coordinate of initial latents that sets a drawn size: a ``B`` float64 tensor.

    For a ``B x N x 7`` latent ``xi`` (all N slots, padding included),

        u = (1 / sqrt(N)) sum_{j=1..N} xi_{j,1},

    the normalized sum of the first position coordinate. The sampler never reads this
    direction: it sees the latent only through :func:`project_noise`, whose position part
    ``xi_{i,1} - (1/n) sum_{k<=n} xi_{k,1}`` on the n real atoms (0 on padding) has
    coefficient vectors orthogonal to ``(1, ..., 1)`` for every n. So for N(0, I) noise u is
    N(0, 1) and independent of everything the molecule is made of, whatever n it sets.
    """
    first = latent[..., 0].to(torch.float64)
    return first.sum(dim=-1) / float(np.sqrt(first.shape[-1]))


class AtomCountQuantile:
    """Atom counts as the histogram's quantile of a standard normal coordinate.

    With ``h`` the atom-count histogram (index n = number of atoms, ``h_0`` ignored) and
    ``F_m = sum_{k<=m} h_k / sum_k h_k`` its cumulative distribution, a coordinate u maps to

        n(u) = #{m in 0..N-1 : F_m <= Phi(u)},

    so ``P(n = m) = F_m - F_{m-1} = h_m / sum_k h_k`` for u ~ N(0, 1): n follows the
    histogram exactly, sizes of zero weight never occur, and n is monotone in u (an
    optimizer that moves u moves the size).

    Args:
        atom_count_histogram: counts (or weights) of molecules by atom number, length at most
            ``max_atoms + 1`` beyond which every weight is 0.
        max_atoms: N, the padded size.

    Raises:
        DiffusionError: see :func:`histogram_weights`.
    """

    def __init__(self, atom_count_histogram: NDArray[Any] | Tensor, max_atoms: int = MAX_ATOMS):
        padded = torch.zeros(max_atoms + 1, dtype=torch.float64)
        kept = histogram_weights(atom_count_histogram, max_atoms)
        padded[: len(kept)] = kept
        self.max_atoms = max_atoms
        self.probabilities = padded / padded.sum()
        """P(n = m) for m = 0..N (a ``N + 1`` float64 tensor, 0 at m = 0)."""
        self._cdf = torch.cumsum(self.probabilities, dim=0)[:-1]

    def __call__(self, u: Tensor) -> Tensor:
        """The ``B`` long tensor of counts n(u) of a ``B`` tensor of coordinates."""
        phi = torch.special.ndtr(u.to(torch.float64).cpu())
        return torch.searchsorted(self._cdf, phi, right=True).to(u.device)


class DrawnSizeSampler(FixedSizeSampler):
    """The noise hook for molecules whose size each rollout draws from a histogram.

    Noise has the shape of a :class:`FixedSizeSampler` of ``max_atoms`` = N = 9 atoms
    (``B x K x N x 7``, d = 7 N = 63); molecule b has ``n_b = counts(size_coordinate(
    noise[b, 0]))`` real atoms (:func:`size_coordinate`, :class:`AtomCountQuantile`), the
    first ``n_b`` slots, and the rest is padding: its noise is masked (projected to 0), so
    those coordinates are dead for the optimizer except through u. Unguided (all noise
    N(0, I)), n follows the histogram and the molecule given n is EDM's sample of that size.

    Args:
        diffusion: the model.
        atom_count_histogram: the training set's molecules by atom number.
        n_steps: S (None: the full T).
        final_noise: whether ``p(x | z_0)`` injects noise.
        batch_size: molecules per call of the reverse chain.
        max_atoms: N, the padded size.
        dtype: as :class:`FixedSizeSampler`'s.
    """

    def __init__(
        self,
        diffusion: EquivariantDiffusion,
        atom_count_histogram: NDArray[Any] | Tensor,
        n_steps: int | None = None,
        final_noise: bool = True,
        batch_size: int = 1000,
        max_atoms: int = MAX_ATOMS,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(diffusion, max_atoms, n_steps, final_noise, batch_size, dtype)
        self.counts = AtomCountQuantile(atom_count_histogram, max_atoms)

    def mask(self, latent: Tensor) -> Tensor:
        """The ``B x N`` mask: slot j is real when ``j < n(size_coordinate(latent))``."""
        counts = self.counts(size_coordinate(latent)).to(latent.device)
        slots = torch.arange(self.n_atoms, device=latent.device)
        return slots.unsqueeze(0) < counts.unsqueeze(1)


@dataclass(frozen=True)
class ChainBatch:
    """A batch of B partial reverse chains of a :class:`FixedSizeSampler`, all at one step.

    Steering methods hold these as opaque handles (:class:`StepwiseChains`); nothing but the
    sampler reads their fields.

    Attributes:
        z: the ``B x n x 7`` states ``z_t`` at ``t = timesteps[index]``.
        eps: the ``B x n x 7`` denoiser predictions ``eps_theta(z_t, t)``, or None until
            first needed (each is computed once: the next transition and ``x0_hat`` share it).
        index: i, the reverse transitions taken (0: ``z_T``; S: ``z_0``).
        mask: the ``B x n`` bool mask of real atoms (set by the initial latent; all true at
            a fixed size).
    """

    z: Tensor
    eps: Tensor | None
    index: int
    mask: Tensor

    def __len__(self) -> int:
        return int(self.z.shape[0])


class StepwiseChains:
    """The reverse chain of a :class:`FixedSizeSampler` one transition at a time.

    ``start`` -> ``step`` (S times) -> ``finish`` gives exactly the molecules of one call of
    the sampler on the same noises (tested), and between transitions

        x0_hat(z_t) = (z_t - sigma_t eps_theta(z_t, t)) / alpha_t

    is the predicted clean sample (at ``t = 0`` it is ``x`` without the final noise).
    ``select`` picks rows of a batch (with repeats) without replaying any transition, and
    every molecule's denoiser evaluation is counted in :attr:`forward_passes`: one per
    molecule per evaluation, cached per state, so a whole chain costs ``S + 1`` like a rollout.

    >>> chains = StepwiseChains(sampler)  # doctest: +SKIP
    >>> batch = chains.start(noise[:, 0])  # doctest: +SKIP
    """

    def __init__(self, sampler: FixedSizeSampler) -> None:
        self.sampler = sampler
        self.diffusion = sampler.diffusion
        self.schedule = sampler.schedule
        coefficients = reverse_coefficients(self.diffusion.gamma.cpu(), self.schedule)
        self._alpha_ts = coefficients.alpha_ts.tolist()
        self._eps_scale = coefficients.eps_scale.tolist()
        self._noise_scale = coefficients.noise_scale.tolist()
        gamma = self.diffusion.gamma.cpu().to(torch.float64)
        kept = torch.tensor(self.schedule.timesteps, dtype=torch.long)
        self._alpha = torch.sigmoid(-gamma[kept]).sqrt().tolist()
        self._sigma = torch.sigmoid(gamma[kept]).sqrt().tolist()
        self.forward_passes = 0

    @property
    def n_transitions(self) -> int:
        """S, the reverse transitions between ``start`` and ``finish``."""
        return self.schedule.n_steps

    def _shaped(self, noise: Tensor | NDArray[Any]) -> Tensor:
        """``B x n x 7`` noise (or ``B x d``) as a ``B x n x 7`` tensor of its own dtype."""
        noise = torch.as_tensor(noise)
        n = self.sampler.n_atoms
        if noise.ndim == 2:
            noise = noise.reshape(noise.shape[0], n, N_FEATURES)
        if noise.ndim != 3 or tuple(noise.shape[1:]) != (n, N_FEATURES):
            raise DiffusionError(
                f"a step takes noise of shape (B, {n}, {N_FEATURES}) or (B, {self.sampler.dim}); "
                f"got {tuple(noise.shape)}"
            )
        return noise

    def _tensor(self, noise: Tensor | NDArray[Any]) -> Tensor:
        """``B x n x 7`` noise (or ``B x d``) on the model's device and dtype."""
        return self._shaped(noise).to(
            device=self.diffusion.gamma.device, dtype=self.diffusion.dtype
        )

    @torch.no_grad()
    def _with_eps(self, chains: ChainBatch) -> ChainBatch:
        """``chains`` with its denoiser predictions (computed and counted once)."""
        if chains.eps is not None:
            return chains
        t = self.schedule.timesteps[chains.index]
        time = torch.full(
            (len(chains),),
            t / self.diffusion.timesteps,
            dtype=chains.z.dtype,
            device=chains.z.device,
        )
        eps = self.diffusion.predict_noise(chains.z, time, chains.mask)
        self.forward_passes += len(chains)
        return ChainBatch(chains.z, eps, chains.index, chains.mask)

    def start(self, noise: Tensor | NDArray[Any]) -> ChainBatch:
        """Chains at ``z_T``, the projected initial latents ``noise`` (``B x n x 7``); each
        chain's real atoms are set here, by the sampler's rule on its latent."""
        latent = self._shaped(noise)
        mask = self.sampler.mask(latent).to(self.diffusion.gamma.device)
        z = project_noise(self._tensor(latent), mask)
        return ChainBatch(z, None, 0, mask)

    @torch.no_grad()
    def step(self, chains: ChainBatch, noise: Tensor | NDArray[Any]) -> ChainBatch:
        """One reverse transition ``t -> s`` of every chain with its ``B x n x 7`` noise."""
        i = chains.index
        if i >= self.n_transitions:
            raise DiffusionError(f"these chains took all {i} transitions; finish them")
        chains = self._with_eps(chains)
        assert chains.eps is not None
        xi = self._tensor(noise)
        mask = chains.mask
        z = (
            chains.z / self._alpha_ts[i]
            - self._eps_scale[i] * chains.eps
            + self._noise_scale[i] * project_noise(xi, mask)
        )
        z = torch.cat([remove_mean(z[..., :3], mask), z[..., 3:]], dim=-1)
        return ChainBatch(z, None, i + 1, mask)

    def select(self, chains: ChainBatch, index: Sequence[int] | NDArray[Any]) -> ChainBatch:
        """The chains ``index`` (repeats allowed), predictions kept: nothing is replayed.

        A chain picked more than once gets its prediction computed before it is copied, so
        its copies share that one denoiser evaluation."""
        picked = np.asarray(index, dtype=np.int64)
        if chains.eps is None and len(np.unique(picked)) < len(picked):
            chains = self._with_eps(chains)
        rows = torch.as_tensor(picked, device=chains.z.device)
        eps = None if chains.eps is None else chains.eps[rows]
        return ChainBatch(chains.z[rows], eps, chains.index, chains.mask[rows])

    @staticmethod
    def _molecules(x: Tensor, mask: Tensor) -> MoleculeSamples:
        """Molecules of ``B x n x 7`` clean states ``x`` with real atoms ``mask`` (as
        :meth:`EquivariantDiffusion.sample_from_noise` returns them: types -1 on padding)."""
        positions = remove_mean(x[..., :3], mask)
        atom_types = torch.where(mask, x[..., 3:].argmax(dim=-1), -1)
        return MoleculeSamples(positions=positions, atom_types=atom_types, mask=mask)

    def predicted_clean(self, chains: ChainBatch) -> tuple[ChainBatch, MoleculeSamples]:
        """``x0_hat`` of every chain as molecules, and the chains with their predictions."""
        chains = self._with_eps(chains)
        assert chains.eps is not None
        i = chains.index
        x0_hat = (chains.z - self._sigma[i] * chains.eps) / self._alpha[i]
        return chains, self._molecules(x0_hat, chains.mask)

    def finish(
        self, chains: ChainBatch, noise: Tensor | NDArray[Any] | None = None
    ) -> MoleculeSamples:
        """The molecules ``x ~ p(x | z_0)`` of chains at ``z_0``, with the final ``B x n x 7``
        noise (required when the schedule has ``final_noise``)."""
        if chains.index != self.n_transitions:
            raise DiffusionError(
                f"finish takes chains at z_0 (after {self.n_transitions} transitions); these "
                f"took {chains.index}"
            )
        chains = self._with_eps(chains)
        assert chains.eps is not None
        x = (chains.z - self._sigma[-1] * chains.eps) / self._alpha[-1]
        if self.schedule.final_noise:
            if noise is None:
                raise DiffusionError("this schedule injects a final noise; give it")
            scale = self._sigma[-1] / self._alpha[-1]
            x = x + scale * project_noise(self._tensor(noise), chains.mask)
        return self._molecules(x, chains.mask)

"""A dense E(n)-equivariant graph network (EGNN) in the block layout of the EDM denoiser.

Molecules are padded to ``N`` atoms (``N = 9`` for heavy-atom QM9) and every pair of real
atoms is an edge, so all tensors are dense: node features ``B x N x H``, positions
``B x N x 3``, edge features ``B x N x N x 2``. A node mask ``B x N`` marks the real atoms;
padding stays zero throughout.

Layout (as in EDM, Hoogeboom et al. 2022): an input embedding, ``n_blocks`` equivariant blocks,
an output embedding. A block computes the edge features ``e_ij = (|x_i - x_j|^2,
|x_i^0 - x_j^0|^2)`` (current and initial squared distances), runs ``n_sublayers`` invariant
message-passing layers (:class:`GraphConvolution`) on the node features, then one
equivariant position update (:class:`EquivariantPositionUpdate`):

    x_i <- x_i + sum_{j != i} (x_i - x_j) / (|x_i - x_j| + 1) * r tanh(phi_x(h_i, h_j, e_ij))

The update only ever adds combinations of differences ``x_i - x_j`` weighted by invariants,
so rotating, reflecting or translating the input rotates, reflects or translates the output
positions and leaves the node features unchanged. :func:`equivariance_errors` measures that.

:class:`EGNNDenoiser` wraps the network as EDM's noise predictor: inputs are noisy positions
and noisy scaled one-hot types with the diffusion time ``t / T`` appended to every node; the
outputs are the predicted position noise (output minus input positions, projected to zero
centre of mass) and the predicted type noise.

Inference memory: the ``B x N x N x H`` pairwise activations of the edge MLPs are nearly all
the memory a forward pass touches (a pass of B = 64 molecules of N = 9 atoms, H = 128, made
some eighty of them, 2.7 MB each in float32). Allocated and freed op by op, such tensors go
through ``mmap``/``munmap`` or a heap that glibc trims back, so they are page-faulted and
zeroed anew by the kernel (measured in development with getrusage: thousands of minor
faults per rollout at B = 64, none at B = 8; the outputs were not kept). Without
gradients, a pass therefore writes its pairwise activations into two preallocated
:class:`PairScratch` tensors, reused by every layer, and applies its SiLUs in place; the
arithmetic (the ops, their order, their kernels) is that of the plain pass, so the outputs
are the same bits (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

EDGE_FEATURES = 2


class EquivarianceError(AssertionError):
    """A network's outputs did not transform with a rotation and translation of its inputs."""


def remove_mean(positions: Tensor, mask: Tensor) -> Tensor:
    """Project positions to zero centre of mass over the real atoms.

    Args:
        positions: a ``B x N x 3`` tensor.
        mask: a ``B x N`` tensor, 1 on real atoms and 0 on padding.

    Returns:
        A ``B x N x 3`` tensor ``(x_i - mean_j x_j) * mask_i``, the mean over real atoms.
    """
    weights = mask.to(positions.dtype).unsqueeze(-1)
    count = weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (positions * weights).sum(dim=1, keepdim=True) / count
    return (positions - mean) * weights


def edge_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A ``B x N x N x 1`` tensor of ``dtype``, 1 where both atoms are real and distinct."""
    node = mask.to(dtype)
    pair = node.unsqueeze(2) * node.unsqueeze(1)
    eye = torch.eye(mask.shape[1], dtype=pair.dtype, device=pair.device)
    return (pair * (1.0 - eye)).unsqueeze(-1)


def silu(x: Tensor) -> Tensor:
    """``x sigmoid(x)``, written over ``x`` when no gradient is taken through it.

    Overwriting a ``B x N x N x H`` activation saves a temporary of that size (module
    docstring); with gradients the input is kept, as autograd needs it.
    """
    return nn.functional.silu(x, inplace=not torch.is_grad_enabled())


@dataclass(frozen=True)
class PairScratch:
    """Two ``B x N x N x H`` tensors an inference pass writes its pairwise activations into.

    In each edge MLP, ``first`` takes the first layer ``W_i h_i + W_j h_j + W_e e_ij + b``
    (then its SiLU) and ``second`` the hidden layer; the next layer overwrites both. Only
    valid without gradients (``out=`` has no autograd). See :meth:`EGNNDenoiser.scratch`.
    """

    first: Tensor
    second: Tensor

    def rows(self, batch: int) -> PairScratch:
        """The scratch of the first ``batch`` molecules (contiguous views, no copy)."""
        return PairScratch(self.first[:batch], self.second[:batch])


def linear_into(layer: nn.Linear, x: Tensor, out: Tensor | None) -> Tensor:
    """``layer(x)`` for a contiguous ``... x in`` tensor, written into ``out`` when given.

    ``F.linear`` of a contiguous input of more than two dimensions is ``addmm(b, x W^T)`` on
    its ``(-1, in)`` view; this is that same call with ``out=``, hence the same bits.
    """
    if out is None:
        return layer(x)
    flat_out = out.view(-1, out.shape[-1])
    flat_in = x.view(-1, x.shape[-1])
    if layer.bias is None:
        torch.mm(flat_in, layer.weight.t(), out=flat_out)
    else:
        torch.addmm(layer.bias, flat_in, layer.weight.t(), out=flat_out)
    return out


def squared_distances(positions: Tensor) -> Tensor:
    """A ``B x N x N x 1`` tensor of ``|x_i - x_j|^2`` for ``B x N x 3`` positions."""
    differences = positions.unsqueeze(2) - positions.unsqueeze(1)
    return (differences**2).sum(dim=-1, keepdim=True)


class _PairwiseLinear(nn.Module):
    """The first layer of an edge MLP, ``W [h_i, h_j, e_ij] + b``, without the concatenation.

    ``W [h_i, h_j, e] = W_i h_i + W_j h_j + W_e e``: the node terms are computed once per node
    (``B x N x H``) and broadcast over edges, which is exact and avoids an ``N^2 x 2H`` input.
    """

    def __init__(self, hidden: int, edge_features: int, out_features: int) -> None:
        super().__init__()
        self.source = nn.Linear(hidden, out_features)
        self.target = nn.Linear(hidden, out_features, bias=False)
        self.edge = nn.Linear(edge_features, out_features, bias=False)

    def forward(self, h: Tensor, edges: Tensor, out: Tensor | None = None) -> Tensor:
        """``B x N x H`` nodes, ``B x N x N x E`` edges -> a ``B x N x N x out`` tensor
        (written into ``out`` when given)."""
        pairs = torch.add(self.source(h).unsqueeze(2), self.target(h).unsqueeze(1), out=out)
        # W_e e_ij is added by the product itself (beta = 1): no second N^2 x out temporary.
        flat = pairs.view(-1, pairs.shape[-1])
        flat.addmm_(edges.reshape(-1, edges.shape[-1]), self.edge.weight.t())
        return pairs


class GraphConvolution(nn.Module):
    """An invariant message-passing layer with gated messages and a residual node update.

    m_ij = phi_e(h_i, h_j, e_ij) * sigmoid(phi_a(phi_e(...))),
    h_i <- h_i + phi_h(h_i, sum_{j != i} m_ij / normalization_factor).
    """

    def __init__(self, hidden: int, edge_features: int, normalization_factor: float) -> None:
        super().__init__()
        self.message_in = _PairwiseLinear(hidden, edge_features, hidden)
        self.message_out = nn.Linear(hidden, hidden)
        self.attention = nn.Linear(hidden, 1)
        self.node_mlp = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.normalization_factor = normalization_factor

    def forward(
        self,
        h: Tensor,
        edges: Tensor,
        edges_mask: Tensor,
        node_mask: Tensor,
        scratch: PairScratch | None = None,
    ) -> Tensor:
        """Update ``B x N x H`` node features given ``B x N x N x E`` edge features.

        Args:
            h: a ``B x N x H`` tensor.
            edges: a ``B x N x N x E`` tensor.
            edges_mask: a ``B x N x N x 1`` tensor (see :func:`edge_mask`).
            node_mask: a ``B x N x 1`` tensor.
            scratch: where the pairwise activations go (inference only), or None.
        """
        first, second = (None, None) if scratch is None else (scratch.first, scratch.second)
        messages = silu(self.message_in(h, edges, out=first))
        messages = silu(linear_into(self.message_out, messages, second))
        # The gate is B x N x N x 1: masking it, not the messages, spares a pass over
        # B x N x N x H; m (s e) = (m s) e exactly, as e is 0 or 1.
        gate = torch.sigmoid(self.attention(messages)) * edges_mask
        messages = messages * gate if torch.is_grad_enabled() else messages.mul_(gate)
        aggregated = messages.sum(dim=2) / self.normalization_factor
        return (h + self.node_mlp(torch.cat([h, aggregated], dim=-1))) * node_mask


class EquivariantPositionUpdate(nn.Module):
    """x_i <- x_i + sum_{j != i} (x_i - x_j) / (|x_i - x_j| + 1) * r tanh(phi_x(h_i, h_j, e_ij)).

    ``r`` (``coordinate_range``) bounds each pairwise displacement; the last layer of phi_x is
    initialized near zero so that an untrained network barely moves the atoms.
    """

    def __init__(
        self,
        hidden: int,
        edge_features: int,
        normalization_factor: float,
        coordinate_range: float,
    ) -> None:
        super().__init__()
        self.weight_in = _PairwiseLinear(hidden, edge_features, hidden)
        self.weight_hidden = nn.Linear(hidden, hidden)
        self.weight_out = nn.Linear(hidden, 1, bias=False)
        nn.init.xavier_uniform_(self.weight_out.weight, gain=0.001)
        self.normalization_factor = normalization_factor
        self.coordinate_range = coordinate_range

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        edges: Tensor,
        edges_mask: Tensor,
        node_mask: Tensor,
        scratch: PairScratch | None = None,
    ) -> Tensor:
        """New ``B x N x 3`` positions from ``B x N x H`` nodes and ``B x N x 3`` positions
        (``scratch``: where the pairwise activations go, inference only, or None)."""
        differences = x.unsqueeze(2) - x.unsqueeze(1)
        # The 1e-8 keeps the gradient of the norm finite on the (masked) diagonal i == j.
        distances = torch.sqrt((differences**2).sum(dim=-1, keepdim=True) + 1e-8)
        first, second = (None, None) if scratch is None else (scratch.first, scratch.second)
        weights = silu(self.weight_in(h, edges, out=first))
        weights = silu(linear_into(self.weight_hidden, weights, second))
        weights = torch.tanh(self.weight_out(weights)) * self.coordinate_range
        shifts = differences / (distances + 1.0) * weights * edges_mask
        return (x + shifts.sum(dim=2) / self.normalization_factor) * node_mask


class EquivariantBlock(nn.Module):
    """``n_sublayers`` invariant :class:`GraphConvolution` layers, then one position update."""

    def __init__(
        self,
        hidden: int,
        n_sublayers: int,
        normalization_factor: float,
        coordinate_range: float,
    ) -> None:
        super().__init__()
        self.convolutions = nn.ModuleList(
            GraphConvolution(hidden, EDGE_FEATURES, normalization_factor)
            for _ in range(n_sublayers)
        )
        self.position_update = EquivariantPositionUpdate(
            hidden, EDGE_FEATURES, normalization_factor, coordinate_range
        )

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        initial_squared_distances: Tensor,
        edges_mask: Tensor,
        node_mask: Tensor,
        scratch: PairScratch | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One block: ``B x N x H`` nodes and ``B x N x 3`` positions in, both updated out."""
        edges = torch.cat([squared_distances(x), initial_squared_distances], dim=-1)
        for convolution in self.convolutions:
            h = convolution(h, edges, edges_mask, node_mask, scratch)
        x = self.position_update(h, x, edges, edges_mask, node_mask, scratch)
        return h * node_mask, x


class EGNN(nn.Module):
    """Embedding, ``n_blocks`` :class:`EquivariantBlock`, output embedding.

    Args:
        in_features: size of the input node features.
        out_features: size of the output node features.
        hidden: H, the node feature size inside the network.
        n_blocks: number of equivariant blocks.
        n_sublayers: invariant message-passing layers per block.
        normalization_factor: messages and shifts are summed over neighbours, then divided
            by this.
        coordinate_range: r, the bound of each pairwise position shift.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: int = 128,
        n_blocks: int = 6,
        n_sublayers: int = 1,
        normalization_factor: float = 1.0,
        coordinate_range: float = 15.0,
    ) -> None:
        super().__init__()
        if hidden < 1 or n_blocks < 1 or n_sublayers < 1:
            raise ValueError(
                f"an EGNN needs hidden >= 1, n_blocks >= 1, n_sublayers >= 1; got "
                f"hidden={hidden}, n_blocks={n_blocks}, n_sublayers={n_sublayers}"
            )
        self.embedding_in = nn.Linear(in_features, hidden)
        self.blocks = nn.ModuleList(
            EquivariantBlock(hidden, n_sublayers, normalization_factor, coordinate_range)
            for _ in range(n_blocks)
        )
        self.embedding_out = nn.Linear(hidden, out_features)

    def forward(
        self, h: Tensor, x: Tensor, mask: Tensor, scratch: PairScratch | None = None
    ) -> tuple[Tensor, Tensor]:
        """Map ``B x N x F_in`` features and ``B x N x 3`` positions of masked graphs.

        Args:
            h: a ``B x N x F_in`` tensor of node features.
            x: a ``B x N x 3`` tensor of positions.
            mask: a ``B x N`` tensor, 1 on real atoms.
            scratch: ``B x N x N x H`` tensors for the pairwise activations (inference only;
                module docstring), or None.

        Returns:
            ``B x N x F_out`` features (invariant) and ``B x N x 3`` positions (equivariant),
            both zero on padding.
        """
        node_mask = mask.to(x.dtype).unsqueeze(-1)
        edges_mask = edge_mask(mask, x.dtype)
        initial = squared_distances(x)
        h = self.embedding_in(h) * node_mask
        for block in self.blocks:
            h, x = block(h, x, initial, edges_mask, node_mask, scratch)
        return self.embedding_out(h) * node_mask, x


class EGNNDenoiser(nn.Module):
    """EDM's noise predictor eps_theta(z_t, t) on positions and scaled one-hot atom types.

    The network sees node features ``[z_h, t / T]`` (``z_h`` the noisy types, already scaled
    by the diffusion's type scale) and positions ``z_x``; it predicts the position noise as
    ``x_out - z_x`` projected to zero centre of mass, and the type noise as the first
    ``n_types`` output features.

    Args:
        n_types: number of atom types (4 for C, N, O, F).
        hidden, n_blocks, n_sublayers, normalization_factor, coordinate_range: see :class:`EGNN`.
    """

    def __init__(
        self,
        n_types: int = 4,
        hidden: int = 128,
        n_blocks: int = 6,
        n_sublayers: int = 1,
        normalization_factor: float = 1.0,
        coordinate_range: float = 15.0,
    ) -> None:
        super().__init__()
        self.n_types = n_types
        self.egnn = EGNN(
            in_features=n_types + 1,
            out_features=n_types + 1,
            hidden=hidden,
            n_blocks=n_blocks,
            n_sublayers=n_sublayers,
            normalization_factor=normalization_factor,
            coordinate_range=coordinate_range,
        )

    @property
    def hidden(self) -> int:
        """H, the node feature size inside the network."""
        return self.egnn.embedding_in.out_features

    def scratch(self, batch: int, n_atoms: int) -> PairScratch:
        """Uninitialized ``batch x n_atoms x n_atoms x H`` scratch on the model's device and
        dtype, for :meth:`forward` without gradients."""
        weight = self.egnn.embedding_in.weight
        shape = (batch, n_atoms, n_atoms, self.hidden)
        return PairScratch(
            torch.empty(shape, dtype=weight.dtype, device=weight.device),
            torch.empty(shape, dtype=weight.dtype, device=weight.device),
        )

    def forward(
        self, z: Tensor, t: Tensor, mask: Tensor, scratch: PairScratch | None = None
    ) -> Tensor:
        """Predicted noise for a ``B x N x (3 + n_types)`` state ``z = [z_x, z_h]``.

        Args:
            z: a ``B x N x (3 + n_types)`` tensor; positions first, then scaled types.
            t: a ``B`` tensor of diffusion times in [0, 1] (t_int / T).
            mask: a ``B x N`` tensor, 1 on real atoms.
            scratch: ``B x N x N x H`` tensors (:meth:`scratch`, or its :meth:`PairScratch.rows`)
                the pass writes its pairwise activations into; only under ``torch.no_grad``.

        Returns:
            A ``B x N x (3 + n_types)`` tensor ``[eps_x, eps_h]``, zero on padding, with
            ``eps_x`` of zero centre of mass; the same with or without ``scratch``.

        Raises:
            ValueError: ``scratch`` while gradients are recorded, or of another shape,
                dtype or device than the batch.
        """
        if scratch is not None:
            expected = (*mask.shape, mask.shape[1], self.hidden)
            if torch.is_grad_enabled():
                raise ValueError("a scratch is for inference: call under torch.no_grad()")
            for buffer in (scratch.first, scratch.second):
                if (tuple(buffer.shape), buffer.dtype, buffer.device) != (
                    expected,
                    z.dtype,
                    z.device,
                ):
                    raise ValueError(
                        f"the scratch is {tuple(buffer.shape)} {buffer.dtype} on "
                        f"{buffer.device}; this batch needs {expected} {z.dtype} on {z.device}"
                    )
        node_mask = mask.to(z.dtype).unsqueeze(-1)
        positions = z[..., :3]
        time = t.to(z.dtype).view(-1, 1, 1).expand(-1, z.shape[1], 1)
        features = torch.cat([z[..., 3:], time], dim=-1) * node_mask
        h, x = self.egnn(features, positions, mask, scratch)
        eps_x = remove_mean((x - positions) * node_mask, mask)
        return torch.cat([eps_x, h[..., : self.n_types]], dim=-1)


def random_orthogonal(
    batch: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
    proper: bool = False,
) -> Tensor:
    """A ``batch x 3 x 3`` tensor of Haar-distributed orthogonal matrices.

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q; ``proper=True``
    flips one column where needed so that every matrix is a rotation (determinant +1).
    """
    gaussian = torch.randn(batch, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    if proper:
        flip = torch.where(torch.linalg.det(q) < 0, -1.0, 1.0).to(q.dtype)
        q = torch.cat([q[..., :1] * flip.view(-1, 1, 1), q[..., 1:]], dim=-1)
    return q.to(dtype)


def equivariance_errors(
    denoiser: nn.Module,
    z: Tensor,
    t: Tensor,
    mask: Tensor,
    generator: torch.Generator,
    translation_scale: float = 5.0,
) -> tuple[float, float]:
    """How far ``denoiser`` is from E(3) equivariance on one batch.

    Draws, per molecule, an orthogonal Q and a shift b, and compares
    ``f(Q z_x + b, z_h)`` with ``(Q f_x(z), f_h(z))``: the position output of a noise
    predictor rotates (and does not translate) and the type output is unchanged.

    Args:
        denoiser: a module ``(z: B x N x (3 + F), t: B, mask: B x N) -> B x N x (3 + F)``.
        z: a ``B x N x (3 + F)`` tensor (positions first).
        t: a ``B`` tensor of times.
        mask: a ``B x N`` tensor, 1 on real atoms.
        generator: the source of Q and b.
        translation_scale: the standard deviation of the shift b.

    Returns:
        ``(position_error, type_error)``: max absolute deviations over the batch.
    """
    batch = z.shape[0]
    rotation = random_orthogonal(batch, generator, dtype=z.dtype).to(z.device)
    shift = translation_scale * torch.randn(batch, 1, 3, generator=generator, dtype=torch.float64)
    node_mask = mask.to(z.dtype).unsqueeze(-1)
    moved_positions = (z[..., :3] @ rotation.transpose(1, 2) + shift.to(z)) * node_mask
    with torch.no_grad():
        output = denoiser(z, t, mask)
        moved_output = denoiser(torch.cat([moved_positions, z[..., 3:]], dim=-1), t, mask)
    expected_positions = output[..., :3] @ rotation.transpose(1, 2)
    position_error = (moved_output[..., :3] - expected_positions).abs().max().item()
    type_error = (moved_output[..., 3:] - output[..., 3:]).abs().max().item()
    return position_error, type_error


def assert_equivariant(
    denoiser: nn.Module,
    z: Tensor,
    t: Tensor,
    mask: Tensor,
    generator: torch.Generator,
    atol: float,
) -> None:
    """Raise :class:`EquivarianceError` if :func:`equivariance_errors` exceed ``atol``."""
    position_error, type_error = equivariance_errors(denoiser, z, t, mask, generator)
    if not (position_error <= atol and type_error <= atol):
        raise EquivarianceError(
            f"the network is not E(3)-equivariant to {atol:g}: position error "
            f"{position_error:.3g}, type error {type_error:.3g} under a random rotation and "
            f"translation"
        )

"""The problem contract: a chain of K noise injections with one loss per step.

Read this module first; every problem in casbo-bench (test functions under linear-Gaussian
dynamics, the molecule sampler) implements it, and every optimizer sees only what it
exposes: vectors in, losses out.

Generation runs steps k = K, ..., 1. Step k injects a noise vector xi_k in R^d and
produces the state x_{k-1}:

    x_{K-1} = b_K xi_K                        (the first injection is the initial latent)
    x_{k-1} = m_k(x_k) + b_k xi_k,   k < K    (m_k, b_k: dynamics the optimizer never sees)

The pre-trained (unguided) sampler draws every xi_k from N(0, I_d); every optimizer starts
from that law. A plain problem is the chain with K = 1 and b_1 = 1, so x_0 = xi_1.

Arrays hold the steps in generation order: ``noise[:, 0]`` is xi_K (the initial latent) and
``noise[:, K - 1]`` is xi_1. A rollout returns one loss per step in the same order,
``w_k f_k(x_{k-1})``; the loss of the rollout is their sum. One rollout is one evaluation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench.errors import ProblemError

FloatArray = NDArray[np.float64]

RolloutDetails = dict[str, NDArray[Any]]
"""Side information of a batch of rollouts: name -> a ``n`` array (one entry per rollout)."""


class Problem(ABC):
    """A sequential black-box problem over ``n_steps`` noise vectors of size ``dim``.

    Attributes:
        name: the registry name of the problem family (e.g. ``"ellipsoid"``).
        dim: d, the size of each injected noise vector.
        n_steps: K, the number of injections (1 for a plain problem).
        optimal_loss: J*, the infimum of the expected loss over all per-step Gaussian laws,
            where it is known (NaN otherwise).
        initial_scale: s0, the standard deviation of the initial law N(0, s0^2 I) every
            method starts from on every noise (docs/method.md section 4b). It is 1, the
            pre-trained sampler's own law, for every chain problem here, and 2 on COCO's
            bbob functions (:mod:`casbo_bench.problems.bbob`).
    """

    name: str
    dim: int
    n_steps: int
    optimal_loss: float = float("nan")
    initial_scale: float = 1.0

    @abstractmethod
    def rollout(self, noise: FloatArray) -> FloatArray:
        """Step losses of a batch of rollouts.

        Args:
            noise: a ``n x K x d`` array of injected noises in generation order.

        Returns:
            A ``n x K`` array: column j holds the weighted loss of the (j+1)-th step
            generated; row sums are the rollout losses.
        """

    def rollout_details(self, noise: FloatArray) -> tuple[FloatArray, RolloutDetails]:
        """Step losses and per-rollout side information of a batch of rollouts.

        The runner records each entry of the details as a nullable trace column
        ``detail_<name>`` beside the loss (e.g. a molecule's validity and SMILES). A problem
        without side information returns none (this default).

        Args:
            noise: a ``n x K x d`` array of injected noises in generation order.

        Returns:
            The ``n x K`` step losses of :meth:`rollout` and a dict of ``n`` arrays, with
            the same keys on every call.
        """
        return self.rollout(noise), {}

    @property
    def forward_passes_per_rollout(self) -> int | None:
        """Denoiser evaluations (network forward passes) one rollout costs, for problems
        with a pre-trained sampler (the molecule tasks); None for problems without one. The
        runner records the two cost axes (black-box calls, denoiser evaluations) exactly
        where it is given (docs/method.md section 7b)."""
        return None

    def end_search(self) -> None:
        """The runner's call when a repetition's search ends (its budget spent, or the search
        failed): the rollouts after it, the fresh samples, measure the tuned sampler and are
        no search evaluations. A problem that records the search's evaluations in a format
        of its own (bbob: COCO's observer) closes that record here; by default nothing
        happens."""
        return None

    def instance_record(self) -> dict[str, Any]:
        """What identifies the instance beyond its seed, for the trace's provenance (bbob:
        COCO's function, instance and f_opt); empty by default."""
        return {}

    def loss(self, noise: FloatArray) -> FloatArray:
        """Rollout losses, a ``n`` array: ``rollout(noise).sum(axis=1)``."""
        return self.rollout(noise).sum(axis=1)

    @property
    def has_expected_loss(self) -> bool:
        """Whether :meth:`expected_loss` has a closed form for this problem."""
        return False

    def expected_loss(self, means: FloatArray, covariances: FloatArray) -> float:
        """J(theta) = E[sum_k w_k f_k(x_{k-1})] with xi_k ~ N(means[j], covariances[j]).

        Args:
            means: a ``K x d`` array of per-step noise means, generation order.
            covariances: a ``K x d x d`` array of per-step noise covariances.
        """
        raise NotImplementedError(f"problem {self.name!r} has no closed-form expected loss")

    def check_noise(self, noise: FloatArray) -> FloatArray:
        """Return ``noise`` as a float64 ``n x K x d`` array or raise ProblemError."""
        noise = np.asarray(noise, dtype=np.float64)
        if noise.ndim != 3 or noise.shape[1:] != (self.n_steps, self.dim):
            raise ProblemError(
                f"problem {self.name!r} takes noise of shape (n, {self.n_steps}, {self.dim}); "
                f"got {noise.shape}"
            )
        return noise

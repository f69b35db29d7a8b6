"""casbo-bench: a reproducibility benchmark of covariance-adaptive sequential black-box
optimization (CASBO) for steering diffusion samplers.

Layers, bottom up (each imports only the ones below it):

- :mod:`casbo_bench.problems` and :mod:`casbo_bench.optimizers`: the ground floor. They never
  import each other: an optimizer sees vectors and losses, a problem does not know who
  optimizes it.
- :mod:`casbo_bench.runner`: joins one optimizer to one problem for a batch of seeds and
  writes a validated trace with provenance.
- :mod:`casbo_bench.analysis`: tables, statistics, figures, rate checks and the claims
  ledger, from validated traces only.
- :mod:`casbo_bench.cli` and the Snakemake workflow: wiring from config to the layers below.
"""

__version__ = "0.1.0"

"""Training the molecule models; nothing that samples or scores a molecule imports this.

- :mod:`casbo_bench.molecules.training.edm`: the heavy-atom EDM, a resumable loop in
  time-limited slices (``casbo-bench train-edm``).
- :mod:`casbo_bench.molecules.training.predictor`: the property predictor
  (``casbo-bench train-predictor``).

Both write a model folder in the layout :mod:`casbo_bench.molecules.checkpoint` reads.
"""

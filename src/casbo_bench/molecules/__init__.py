"""Target-guided 3D molecule generation: QM9 data and the pre-trained equivariant diffusion model.

Modules, each one concern (import the one you need; nothing heavy is imported here):

- :mod:`casbo_bench.molecules.data`: QM9 heavy-atom geometries and properties from qm9pack,
  cached as one npz with a fixed seeded split and provenance.
- :mod:`casbo_bench.molecules.egnn`: the dense E(n)-equivariant graph network (EDM's block
  layout) and a reusable equivariance check.
- :mod:`casbo_bench.molecules.diffusion`: EDM's diffusion on positions and atom types, its
  loss, the respaced ancestral sampler and the noise hook (:class:`FixedSizeSampler`).
- :mod:`casbo_bench.molecules.training`: the resumable training loop, checkpoints and
  :func:`~casbo_bench.molecules.training.load_sampling_checkpoint`;
  :mod:`casbo_bench.molecules.train` is its command line.
- :mod:`casbo_bench.molecules.rebuild`: heavy-atom 3D structure -> RDKit molecule (bond orders
  from distances, valence repair, implicit hydrogens); never raises on bad input.
- :mod:`casbo_bench.molecules.metrics`: atom and molecule stability, validity, uniqueness,
  novelty of rebuilt molecules.
- :mod:`casbo_bench.molecules.scores`: black-box scores (QED with a penalty; GFN2-xTB dipole
  and HOMO-LUMO gap through tblite).
- :mod:`casbo_bench.molecules.evaluate`: unguided samples of the checkpoint and their metrics
  beside real QM9's (command line).
"""

"""Target-guided 3D molecule generation: QM9 data and the pre-trained equivariant diffusion model.

Modules, each one concern (import the one you need; nothing is imported here). The model:

- :mod:`casbo_bench.molecules.atoms`: the heavy-atom layout (elements, at most 9 atoms, 7
  numbers per atom); standard library only.
- :mod:`casbo_bench.molecules.data`: QM9 heavy-atom geometries and properties from qm9pack,
  cached as one npz with a fixed seeded split and provenance; a structure as xyz text.
- :mod:`casbo_bench.molecules.egnn`: the dense E(n)-equivariant graph network (EDM's block
  layout) and a reusable equivariance check.
- :mod:`casbo_bench.molecules.diffusion`: EDM's diffusion on positions and atom types, its
  loss, the respaced ancestral sampler and the noise hook (:class:`FixedSizeSampler`).
- :mod:`casbo_bench.molecules.property_model`: the E(3)-invariant property predictor's
  network.
- :mod:`casbo_bench.molecules.checkpoint`: the model folders (``models/`` by default), the
  one place that reads them: manifests, sha256 checks, loading the sampler and the
  predictor.

Chemistry, on rebuilt molecules (RDKit, no torch):

- :mod:`casbo_bench.molecules.rebuild`: heavy-atom 3D structure -> RDKit molecule (bond
  orders from distances, valence repair, implicit hydrogens); never raises on bad input.
- :mod:`casbo_bench.molecules.metrics`: atom and molecule stability, validity, uniqueness,
  novelty of rebuilt molecules.
- :mod:`casbo_bench.molecules.scores`: black-box scores (QED with a penalty; GFN2-xTB dipole
  and HOMO-LUMO gap through tblite).

The benchmark problem:

- :mod:`casbo_bench.molecules.tasks`: the task table and the size rule d = 7 n, K = S + 2;
  standard library only (the problem registry and the workflow read it).
- :mod:`casbo_bench.molecules.problem`: :class:`MoleculeProblem`, a task's scorer per kind.

Beside them: :mod:`casbo_bench.molecules.evaluate` (unguided samples of a checkpoint and their
metrics beside real QM9's) and the subpackage :mod:`casbo_bench.molecules.training` (the EDM
and the predictor; nothing above imports it). The command lines are ``casbo-bench qm9``,
``train-edm``, ``train-predictor``, ``evaluate-edm`` and ``molecule-report``
(:mod:`casbo_bench.cli`); the benchmark's tables and figures belong to the analysis layer
(``analysis/molecules.py``), which reads traces and imports no model.
"""

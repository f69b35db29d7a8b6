"""pandera schemas: :mod:`.trace` for the raw per-evaluation traces the runner writes,
:mod:`.tables` for every aggregated table before it is written."""

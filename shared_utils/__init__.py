"""What every experiment shares: flags, seeding, data, run folders, plots, statistics, the study
runner, and (in the ``pytorch`` subpackage) the PyTorch core.

Nothing here imports a section. Every module outside ``shared_utils.pytorch`` is NumPy-side and
never imports torch, so NumPy experiments start fast and never depend on PyTorch; the engine,
input pipeline, model zoo, checkpoints and data-parallel helpers live in ``shared_utils.pytorch``,
and importing it is the only way torch enters this package (tests/test_imports.py checks both).
"""

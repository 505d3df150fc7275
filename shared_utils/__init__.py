"""What every experiment shares: flags, seeding, devices, data, run folders, plots, statistics,
and the PyTorch side (training.py, tensor_pipeline.py).

Nothing here imports a section. The NumPy-side modules (cli, seed, device, data, runs, plots,
stats, report) import torch only inside the functions that need it, so NumPy experiments start
fast and never depend on PyTorch; training.py and tensor_pipeline.py are PyTorch code.
"""

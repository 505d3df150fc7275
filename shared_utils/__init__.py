"""What every experiment shares: flags, seeding, devices, data, run folders, plots, statistics.

Nothing here imports a section, and nothing here imports torch at module level:
NumPy experiments start fast and stay honest about their dependencies.
"""

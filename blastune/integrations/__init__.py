"""Plug blastune's thread limits into the engines that run many jobs: Dask (``blastune.integrations.dask``).

Slurm job scripts live in ``blastune.slurm``; joblib needs no glue (see docs/cluster.md).
Each integration imports its engine only when used, so a missing optional extra is one clear error.
"""

"""Sweeps: every combination of lesions × seeds × noise × profiles, run as independent
seeded in-process jobs on local cores or a Dask cluster, into one results table.

    needlectl sim sweep SWEEP.toml [--out DIR] [--jobs N | --dask ADDRESS]

``spec`` reads the sweep file into jobs, ``job`` runs one and judges its safety from
the simulator's truth, ``engines`` runs them (processes or Dask), ``table`` keeps the
results (CSV + Parquet, resumable), ``report`` summarises and draws them.
"""

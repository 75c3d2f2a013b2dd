"""Batch fit and detect over many series on Dask: ``warden-algos batch fit|detect``.

The platform calls algorithms one series at a time; a trainer fits thousands of sensors at once
and a scheduled job scores all of them. This package runs that over a folder of CSV/Parquet files
on a Dask cluster (an embedded ``LocalCluster`` of processes, or a scheduler's address): one task
per input file, read lazily by the worker that runs it, each of its series fitted (models pushed
to the model store) or scored (its stored model, or statelessly) through the same checked paths a
request takes. Modules, one job each:

- ``job``: what a run is (the spec every task gets) and what a task answers (outcomes);
- ``outputs``: where a task's results go, written atomically, named by the input's content so a
  re-run finds what is done;
- ``task``: one file on a worker;
- ``driver``: the cluster, the progress bar and the run summary;
- ``cli``: the commands.

Nothing here is imported by a request: ``warden_algos.cli`` imports ``batch.cli`` (argparse only),
and Dask is imported by the driver when a run starts.
"""

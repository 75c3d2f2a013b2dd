"""Experiment tracking: ``evaluate``, ``models fit`` and ``batch fit`` with ``--mlflow [URI]``.

``options`` adds the command-line options (argparse only: every parser is built at start-up);
``client`` opens the tracking store and logs to it (MLflow, the ``tracking`` extra, imported only
once a command runs with ``--mlflow``); ``evaluation`` and ``fitting`` say what each command logs.
Nothing here writes to stdout, which belongs to the commands' own outputs.
"""

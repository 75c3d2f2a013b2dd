"""The model store: fitted states per algorithm, params and series, in S3 or a local folder.

A trainer fits a series (``models fit``) and pushes the state; a node copies the current models
of the series it serves into its local models folder (``models sync``, see
``warden_algos/models_folder.py``), where ``run``/``serve --models-dir`` find them by series key.
The store works like the release bucket (``warden_algos/delivery/store.py``): immutable objects
named by their sha256, one movable pointer per series moved with a conditional write, and an
append-only history of the moves. Layout, under the prefix (``warden-models`` by default)::

    blobs/sha256/<sha256>.state                            a state's bytes, never rewritten
    models/<algorithm>/<params id>/<key id>.json           the series' current model (a pointer)
    history/<algorithm>/<params id>/<key id>/<generation>.json   one object per pointer move

``params id`` and ``key id`` are the models folder's (``models_folder.params_id``/``key_id``),
so one series has the same name in the bucket and on the node. Modules, one job each:
``records`` (the JSON documents), ``objects``/``s3``/``local`` (the two backends behind one
interface), ``store`` (push, read, roll back), ``tables`` (series from CSV/Parquet), ``training``
(fit many series and push them), ``sync`` (into a models folder) and ``sync_index`` (what the
last sync saw, so a no-op sync reads nothing but the listing), ``cli`` (the commands).

Nothing is imported here: ``warden_algos.cli`` imports ``modelstore.cli`` at start-up.
"""

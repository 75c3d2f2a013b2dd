"""``warden-algos http``: the wire contract over HTTP, for callers that are not the JVM host.

A web UI posts the same JSON request envelope that ``run`` and ``serve`` read and gets the same
response envelope back, answered by a pool of ``serve`` workers (warden_algos/workers.py). Split by
job: ``statuses`` (error code -> HTTP status), ``openapi`` (the document, from the contract's own
schemas), ``app`` (the Starlette routes and bounds), ``protocol`` (uvicorn's connection-level
deadline), ``cli`` (the sub-command). Only ``cli`` is imported by the command line, and it imports
Starlette and uvicorn only when the command runs.
"""

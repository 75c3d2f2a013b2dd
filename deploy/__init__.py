"""Delivery: immutable releases and movable channels in S3, node-side pull, test-deploy.

Installed as ``warden_algos.deploy`` (setuptools ``package-dir``). Nothing here is imported by a
request: ``run`` and ``serve`` never pay for boto3.
"""

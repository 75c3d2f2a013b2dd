"""Delivery: immutable releases and movable channels in S3, node-side pull, test-deploy.

Needs the ``deploy`` extra (boto3). Nothing here is imported by a request: ``run`` and ``serve``
never pay for boto3. What an operator edits or installs (release config, test-cluster file, the
node agent's systemd unit) lives in the top-level ``deploy/`` folder.
"""

"""Example warden-algos plugin (see ../../README.md, "Write your own algorithm")."""

"""Freezing warden-algos into one executable with PyInstaller, packing it, verifying it.

Lives in the top-level ``build/`` folder and installs as ``warden_algos.build`` (the name ``build``
belongs to PyPA's build frontend). PyInstaller's own work and output folders are never this
folder: they default to ``pyinstaller-work/`` and ``dist/`` beside it.
"""

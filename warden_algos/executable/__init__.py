"""Freezing warden-algos into one executable with PyInstaller, packing it, verifying it.

The spec, the entry script and the hooks PyInstaller reads are language-neutral files in the
top-level ``build/`` folder (``warden_algos.resources.pyinstaller_folder``). PyInstaller's work and
output folders are never that folder: they default to ``pyinstaller-work/`` and ``dist/``.
"""

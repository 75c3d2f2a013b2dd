"""A multivariate payload's matrix from its wire forms, shaped and checked once for every codec.

The wire carries a matrix as rows (a list per timestamp) or packed (its cells row-major); the
column count comes from ``columns``. Both forms are checked here the same way (every row as wide as
the columns, a packed length a whole number of rows) before any array is built from them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from warden_algos.interfaces import F64Array, InvalidInput


def from_flat(flat: F64Array, width: int, path: str) -> F64Array:
    """Packed cells as rows of ``width``."""
    if width == 0 or flat.shape[0] % width:
        raise InvalidInput(
            f"packed matrix of {flat.shape[0]} values is not rows of {width} columns", field=path
        )
    return flat.reshape(-1, width)


def from_rows(rows: Sequence[Sequence[float | None]], width: int, path: str) -> F64Array:
    """Rows of numbers (None or NaN = missing) as a rows x ``width`` float64 matrix."""
    for index, row in enumerate(rows):
        if len(row) != width:
            raise InvalidInput(
                f"row {index} has {len(row)} values, not one per column ({width})",
                field=f"{path}[{index}]",
            )
    if not rows:
        return np.empty((0, width))
    return np.array(rows, dtype=np.float64).reshape(len(rows), width)  # None -> NaN

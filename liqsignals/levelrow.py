"""One candle's output columns as a read-only mapping, what ``LiquidationEngine.update`` returns.

Building a ``dict`` of every column costs more than the engine's whole step on one candle
(55 insertions), and a caller usually reads a few of them. A :class:`LevelRow` keeps its own
copy of the row (one array copy) and looks a column up on access: ``row["liq_magnet"]``,
``row.get(name)``, ``name in row``, iteration over the names, ``len``, ``==`` with any mapping
(a ``dict`` of the same items compares equal; NaN equals NaN), ``dict(row)`` or the faster :meth:`to_dict`
(for ``json.dumps`` and anything that wants a real ``dict``). Values are Python floats, as in a
``dict`` built from the row. The row is immutable and independent of the engine: later updates
do not change it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


class LevelRow(Mapping[str, float]):
    """``{column: value}`` for one candle, read on access (see the module docstring)."""

    __slots__ = ("_names", "_index", "_values")

    def __init__(self, names: tuple[str, ...], index: Mapping[str, int], values: np.ndarray):
        """``values`` (kept, not copied) holds at least ``len(names)`` floats; those after the
        last name are ignored. ``index`` maps each name to its position. :meth:`from_values` is
        the checked way to build one."""
        self._names = names
        self._index = index
        self._values = values

    @classmethod
    def from_values(cls, names: tuple[str, ...], values: Any) -> LevelRow:
        """A row of ``values`` (copied, as float64) under ``names`` in that order."""
        arr = np.array(values, dtype=np.float64)
        if arr.shape != (len(names),):
            raise ValueError(f"need one row of {len(names)} values, got shape {arr.shape}")
        return cls(names, {n: i for i, n in enumerate(names)}, arr)

    def __getitem__(self, key: str) -> float:
        return float(self._values[self._index[key]])

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def to_dict(self) -> dict[str, float]:
        """A plain ``dict`` of every column (for ``json.dumps`` and the like)."""
        return dict(zip(self._names, self._values.tolist(), strict=False))

    def to_array(self) -> np.ndarray:
        """The values in column order (a copy)."""
        return self._values[: len(self._names)].copy()

    def __eq__(self, other: object) -> bool:
        """Same names and values, NaN equal to NaN (a row compares equal to itself, its copy
        and its pickled copy although some columns are NaN; a ``dict`` compares NaN by
        identity only)."""
        if other is self:
            return True
        if isinstance(other, LevelRow):
            n = len(self._names)
            return self._names == other._names and bool(
                np.array_equal(self._values[:n], other._values[:n], equal_nan=True)
            )
        if isinstance(other, Mapping):
            if len(other) != len(self._names):
                return False
            for name in self._names:
                if name not in other:
                    return False
                a, b = self[name], other[name]
                if not (a == b or (a != a and b != b)):
                    return False
            return True
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value semantics, like dict

    def __repr__(self) -> str:
        return f"LevelRow({self.to_dict()!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (LevelRow.from_values, (self._names, self.to_array()))

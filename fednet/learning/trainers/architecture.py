"""What a trainer's parameters look like (names, shapes, dtypes) and its fingerprint.

A site announces the fingerprint of each trainer it has; a run only picks
sites whose fingerprint matches, so every update of a round has the same
arrays. The description comes from a peer, so :meth:`Architecture.from_dict`
bounds every count before it allocates anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fednet.typing import NDArray

MAX_ARRAYS = 10_000
MAX_NAME_CHARS = 256
MAX_RANK = 8
MAX_ELEMENTS = 2**31
"""The most elements all arrays of one architecture may hold together."""
DTYPES = ("float16", "float32", "float64", "int32", "int64")
_KIND = re.compile(r"[A-Za-z0-9_.:/+-]{1,256}")


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise ValueError(
            f"{where}: name must be a string of 1 to {MAX_NAME_CHARS} characters,"
            f" got {name!r:.80}"
        )
    if not name.isprintable():
        raise ValueError(f"{where}: name {name!r:.80} holds control characters")
    return name


def _check_shape(shape: Any, where: str) -> tuple[int, ...]:
    if not isinstance(shape, (list, tuple)) or len(shape) > MAX_RANK:
        raise ValueError(
            f"{where}: shape must be a list of at most {MAX_RANK} sizes,"
            f" got {shape!r:.80}"
        )
    for size in shape:
        # bool is an int to Python, never a size to us.
        if isinstance(size, bool) or not isinstance(size, int):
            raise ValueError(f"{where}: shape sizes must be integers, got {size!r:.40}")
        if not 0 <= size <= MAX_ELEMENTS:
            raise ValueError(f"{where}: shape size {size} is out of range")
    return tuple(shape)


def _check_dtype(dtype: Any, where: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(
            f"{where}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r:.40}"
        )
    return str(dtype)


TRAINER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
"""A trainer's name: what RunConfig ``model`` and ``--trainer name=`` accept."""


@dataclass(frozen=True)
class Architecture:
    """The arrays a trainer's parameters consist of, in order.

    Attributes:
        kind: what the trainer declares itself to be (``fednet.logreg``,
            ``sklearn.SGDClassifier``, ``torch.digits_cnn``); part of the
            fingerprint, so two trainers with equal shapes but different
            computations never share a run.
        names: one unique name per array.
        shapes: one shape per array.
        dtypes: one dtype name per array, from :data:`DTYPES`.

    Raises:
        ValueError: if any field is out of its bounds or they disagree in length.
    """

    kind: str
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not _KIND.fullmatch(self.kind):
            raise ValueError(
                f"architecture kind must be 1 to 256 letters, digits or _.:/+-,"
                f" got {self.kind!r:.80}"
            )
        count = len(self.names)
        if count > MAX_ARRAYS:
            raise ValueError(f"architecture has {count} arrays, at most {MAX_ARRAYS}")
        if len(self.shapes) != count or len(self.dtypes) != count:
            raise ValueError(
                f"architecture has {count} names, {len(self.shapes)} shapes and"
                f" {len(self.dtypes)} dtypes"
            )
        total = 0
        for i, (name, shape, dtype) in enumerate(
            zip(self.names, self.shapes, self.dtypes)
        ):
            where = f"arrays[{i}]"
            _check_name(name, where)
            total += math.prod(_check_shape(shape, where))
            _check_dtype(dtype, where)
            if total > MAX_ELEMENTS:
                raise ValueError(
                    f"architecture holds more than {MAX_ELEMENTS} elements"
                )
        if len(set(self.names)) != count:
            raise ValueError("architecture array names must be unique")

    @classmethod
    def from_arrays(
        cls, kind: str, names: Sequence[str], arrays: Sequence[NDArray]
    ) -> Architecture:
        """Describe ``arrays`` (a trainer's current parameters) under ``names``.

        Raises:
            ValueError: if the counts differ or an array breaks a bound.
        """
        if len(names) != len(arrays):
            raise ValueError(f"{len(names)} names for {len(arrays)} arrays")
        return cls(
            kind=kind,
            names=tuple(names),
            shapes=tuple(tuple(int(n) for n in a.shape) for a in arrays),
            dtypes=tuple(a.dtype.name for a in arrays),
        )

    @property
    def num_elements(self) -> int:
        """Return how many numbers the parameters hold in all."""
        return sum(math.prod(s) for s in self.shapes)

    @property
    def fingerprint(self) -> str:
        """Return the sha256 hex digest of the canonical JSON of this description.

        Canonical: sorted keys, no spaces, ASCII only; shapes as lists.
        """
        canonical = json.dumps(
            self._describe(), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()

    def _describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "arrays": [
                {"name": n, "shape": list(s), "dtype": d}
                for n, s, d in zip(self.names, self.shapes, self.dtypes)
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`, with the fingerprint."""
        return {**self._describe(), "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        """Validate an untrusted JSON description and build it.

        Counts are checked before anything is built from them. A
        ``fingerprint`` key, when present, must match the description.

        Raises:
            ValueError: naming the first missing, extra or invalid field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"architecture must be a JSON object, got {data!r:.80}")
        extra = set(data) - {"kind", "arrays", "fingerprint"}
        if extra:
            raise ValueError(f"architecture has unknown fields {sorted(extra)!r:.200}")
        arrays = data.get("arrays")
        if not isinstance(arrays, list) or len(arrays) > MAX_ARRAYS:
            raise ValueError(
                f"architecture arrays must be a list of at most {MAX_ARRAYS} entries"
            )
        names, shapes, dtypes = [], [], []
        for i, entry in enumerate(arrays):
            where = f"arrays[{i}]"
            if not isinstance(entry, dict) or set(entry) != {"name", "shape", "dtype"}:
                raise ValueError(f"{where}: must be an object of name, shape, dtype")
            names.append(_check_name(entry["name"], where))
            shapes.append(_check_shape(entry["shape"], where))
            dtypes.append(_check_dtype(entry["dtype"], where))
        kind = data.get("kind")
        if not isinstance(kind, str):
            raise ValueError(f"architecture kind must be a string, got {kind!r:.80}")
        arch = cls(kind, tuple(names), tuple(shapes), tuple(dtypes))
        claimed = data.get("fingerprint", arch.fingerprint)
        if claimed != arch.fingerprint:
            raise ValueError(
                f"architecture fingerprint {claimed!r:.80} does not match its arrays"
            )
        return arch


def check_parameters(arch: Architecture, arrays: Sequence[NDArray]) -> None:
    """Check that ``arrays`` are parameters of ``arch`` (count, shape, dtype).

    Finiteness is not checked here: the coordinator's update validation does it.

    Raises:
        ValueError: naming the first array that does not match.
    """
    if len(arrays) != len(arch.names):
        raise ValueError(
            f"{arch.kind} takes {len(arch.names)} arrays, got {len(arrays)}"
        )
    for name, shape, dtype, array in zip(arch.names, arch.shapes, arch.dtypes, arrays):
        if not isinstance(array, np.ndarray):
            raise ValueError(f"{name}: expected a NumPy array, got {type(array)}")
        if array.shape != shape or array.dtype.name != dtype:
            raise ValueError(
                f"{name}: expected {dtype} {shape}, got {array.dtype.name}"
                f" {array.shape}"
            )


def name_parameters(
    arch: Architecture, arrays: Sequence[NDArray]
) -> dict[str, NDArray]:
    """Return ``arrays`` by their architecture names (as an ``.npz`` stores them).

    Raises:
        ValueError: if they do not match the architecture.
    """
    check_parameters(arch, arrays)
    return dict(zip(arch.names, arrays))

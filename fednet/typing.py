"""Type aliases shared across fednet."""

from __future__ import annotations

from typing import NewType

import numpy as np
import numpy.typing as npt

NDArray = npt.NDArray[np.generic]
NDArrays = list[NDArray]
ClientId = NewType("ClientId", str)
Metrics = dict[str, float]

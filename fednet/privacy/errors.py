"""The error every differential-privacy check raises."""

from __future__ import annotations

from fednet.exceptions import FednetError


class PrivacyError(FednetError):
    """A privacy parameter is invalid (noise, clip norm, sampling rate, delta)."""

"""Administration commands: ``fednet sites``, ``fednet ca`` and ``fednet audit``."""

"""Trainers: the protocol any model a site trains implements, and its adapters.

``base`` holds the protocol, ``registry`` finds trainers by name,
``builtin`` wraps the built-in models; ``sklearn_adapter`` and
``torch_adapter`` wrap scikit-learn estimators and PyTorch modules (torch is
imported only when that adapter is used).
"""

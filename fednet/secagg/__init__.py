"""Secure aggregation: pairwise masks, self masks and Shamir dropout recovery.

A sans-I/O core after Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning" (CCS 2017), section 4 (semi-honest
protocol): :mod:`quantize` maps float updates into Z_{2^32}, :mod:`prg` expands
seeds into masks, :mod:`shamir` shares secrets, :class:`party.Party` and
:class:`collector.Collector` hold one round's state on each side.
"""

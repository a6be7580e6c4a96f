"""Differential privacy for federated rounds: DP-FedAvg and its accountant.

:mod:`dp` clips each site's update and adds Gaussian noise to the average
(McMahan et al., 2018, "Learning Differentially Private Recurrent Language
Models"), :mod:`adaptive` moves the clip norm towards a quantile of update
norms (Andrew et al., 2021), :mod:`accountant` turns noise, sampling rate and
rounds into a client-level (epsilon, delta) with dp-accounting's RDP accountant.
"""

"""ServerApp and ClientApp running the fednet benchmark workloads on Flower."""

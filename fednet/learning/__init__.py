"""Tasks and data of a client: datasets, partitioning, schema and models."""

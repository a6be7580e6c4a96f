"""fednet: a federated-learning network over WebSockets."""

__version__ = "0.1.0"

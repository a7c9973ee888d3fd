"""reasoner: exact MAP inference for Markov logic, and a fair-lending audit on top."""

__version__ = "0.1.0"

__all__ = ["__version__"]

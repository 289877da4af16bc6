"""pyweb-popcon: an opt-in popularity contest for Python web frameworks."""

__version__ = "0.1.0"

__version__ = "0.1.0"
API_VERSION = "1.12.1"
"""The PerfectGym Next API version openapi.yaml describes."""

from ._generated import API_VERSION

__version__ = "0.1.0"
__all__ = ["API_VERSION", "__version__"]
"""``API_VERSION`` is the PerfectGym Next API version openapi.yaml describes, read from its
``info.version`` when the generated layer is made: a spec bump changes it with no hand edit."""

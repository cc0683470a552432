"""aps-mirror: mirror Autodesk Platform Services documents into S3, incrementally."""

# The one place the version is written: pyproject.toml reads it, and so does provider_info.
__version__ = "0.1.0"

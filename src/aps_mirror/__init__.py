"""aps-mirror: mirror Autodesk Platform Services documents into S3, incrementally."""

__version__ = "0.1.0"

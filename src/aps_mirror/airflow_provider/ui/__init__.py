"""The "Autodesk accounts" UI: an Airflow plugin whose FastAPI app runs inside the API server."""

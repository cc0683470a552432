"""Client for the APS Data Management, OSS and authentication APIs (no Airflow import)."""

"""Airflow hooks of aps-mirror."""

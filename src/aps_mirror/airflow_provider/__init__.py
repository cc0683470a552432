"""The Airflow layer of aps-mirror: a thin adapter (hook, connection lookup, token store) over the core."""

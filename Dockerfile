# aps-mirror on the official Apache Airflow image.
#
# Extends the image the way the Airflow docs recommend ("Building the image" >
# "Extending the image"): start FROM the released image, stay the `airflow` user,
# and `pip install` with the same Airflow version pinned so pip cannot swap Airflow
# out from under the image.
#
#   docker build -t aps-mirror-airflow:0.1.0 .
#   docker build --build-arg APS_MIRROR_DEMO_PACKAGES= -t aps-mirror-airflow:0.1.0 .   # no demo extras
#
# The Airflow version here must equal the `apache-airflow==` pin in constraints.txt and
# requirements.txt (tests/deploy/test_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11

# Extra requirement(s) installed for the `demo` Compose profile only: its `s3` service runs
# moto's S3-compatible server (`moto_server`) from this same image. The version comes from
# constraints.txt (moto==...), like everything else. Build with an empty value
# (`--build-arg APS_MIRROR_DEMO_PACKAGES=`) for an image that never runs the demo.
ARG APS_MIRROR_DEMO_PACKAGES="moto[s3,server]"

# The build tree must be writable by `airflow`: pip builds the project in place
# (setuptools writes build/ and src/*.egg-info next to the sources).
USER root
RUN mkdir -p /opt/aps-mirror \
    && chown airflow:0 /opt/aps-mirror
USER airflow

WORKDIR /opt/aps-mirror
COPY --chown=airflow:0 constraints.txt requirements.txt pyproject.toml ./
COPY --chown=airflow:0 src/ ./src/

# `set -f`: no globbing of "moto[s3,server]"; the unquoted variable may be empty or hold
# several requirement specs.
# hadolint ignore=DL3013
RUN set -f \
    && pip install --no-cache-dir -c constraints.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        -r requirements.txt \
        . \
        ${APS_MIRROR_DEMO_PACKAGES} \
    && set +f \
    && rm -rf build src/*.egg-info

WORKDIR /opt/airflow
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/

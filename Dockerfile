# vodflow: the official Airflow 3.3 image plus ffmpeg, the pinned requirements and the vodflow package.
FROM apache/airflow:3.3.2-python3.11

USER root
# ffmpeg from Debian, as on the machines vodflow is tested on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

USER airflow
WORKDIR /opt/vodflow
COPY --chown=airflow:root requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY --chown=airflow:root pyproject.toml ./
COPY --chown=airflow:root include ./include
RUN pip install --no-cache-dir --no-deps .

COPY --chown=airflow:root dags /opt/airflow/dags
COPY --chown=airflow:root plugins /opt/airflow/plugins
WORKDIR /opt/airflow

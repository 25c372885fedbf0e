# vodflow: the official Airflow 3.3 image plus ffmpeg, the pinned requirements and the vodflow package.
FROM apache/airflow:3.3.2-python3.11

USER 0
# ffmpeg from Debian, as on the machines vodflow is tested on: it encodes and probes. VMAF scoring uses the static
# ffmpeg of the imageio-ffmpeg wheel (requirements.txt), which has libvmaf and no ffprobe.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# The official image runs as the airflow user (uid 50000, gid 0).
USER 50000
WORKDIR /opt/vodflow
COPY --chown=50000:0 requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt

COPY --chown=50000:0 pyproject.toml ./
COPY --chown=50000:0 include ./include
RUN pip install --no-cache-dir --no-deps .

COPY --chown=50000:0 dags /opt/airflow/dags
COPY --chown=50000:0 plugins /opt/airflow/plugins
WORKDIR /opt/airflow

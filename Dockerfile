# HAR Studio as a Hugging Face Docker Space (Streamlit Spaces are Docker Spaces now), on a GPU.
FROM python:3.11-slim

# unar: RAR extraction for UCF50.rar; curl: the health check; tini: process 1, which reaps ended processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends unar curl tini \
    && rm -rf /var/lib/apt/lists/*

# Spaces run the container as UID 1000. The app folder is made here, owned by the user: a WORKDIR that does
# not exist yet is created root-owned by builders other than BuildKit, and `pip install .` could not write in it.
RUN useradd --create-home --uid 1000 user \
    && install -d -o user -g user /home/user/app
USER user
# HAR_PUBLIC=1: visitors explore, upload and compare; owner actions need the HAR_OWNER_TOKEN Space secret.
# HAR_HOME (where data/ and models/ live) is chosen at start by docker/entrypoint.sh: a Storage Bucket mounted
# at /data when this user can write to it, else the app folder, which a restart wipes (the app says so).
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HAR_APP_DIR=/home/user/app \
    HAR_VOLUME=/data \
    HAR_PUBLIC=1
WORKDIR /home/user/app

# GPU TensorFlow (CUDA libraries from pip), in the same range as requirements.txt; the export extra, so that the
# app's ONNX and LiteRT downloads work here too.
COPY --chown=user requirements.txt requirements-export.txt ./
RUN pip install --no-cache-dir --user "tensorflow[and-cuda]>=2.21,<2.22" -r requirements.txt -r requirements-export.txt

COPY --chown=user . .
# The build has internet: MobileNetV2's ImageNet weights go into the image's Keras cache (~/.keras/models), so
# no visitor waits for them and no restart loses them (the mobilenet model; `har data backbone`).
RUN pip install --no-cache-dir --user --no-deps . && har data demo && har data backbone

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD curl --fail http://localhost:8501/_stcore/health || exit 1
# tini runs as process 1; the entrypoint chooses HAR_HOME, imports pretrained/ runs, resumes a job that the
# restart killed, then becomes the app.
ENTRYPOINT ["/usr/bin/tini", "--", "bash", "/home/user/app/docker/entrypoint.sh"]
# The Space's iframe blocks Streamlit's XSRF cookie, which breaks uploads: XSRF protection is off here only.
CMD ["streamlit", "run", "streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0", \
     "--server.enableXsrfProtection=false", "--server.maxUploadSize=200", "--server.headless=true"]

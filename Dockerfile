# HAR Studio as a Hugging Face Docker Space (Streamlit Spaces are Docker Spaces now), on a GPU.
FROM python:3.11-slim

# unar: RAR extraction for UCF50.rar; curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends unar curl \
    && rm -rf /var/lib/apt/lists/*

# Spaces run the container as UID 1000.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HAR_DATA_DIR=/home/user/app/data \
    HAR_MODELS_DIR=/home/user/app/models
WORKDIR /home/user/app

# GPU TensorFlow (CUDA libraries from pip), in the same range as requirements.txt.
COPY --chown=user requirements.txt ./
RUN pip install --no-cache-dir --user "tensorflow[and-cuda]>=2.21,<2.22" -r requirements.txt

COPY --chown=user . .
RUN pip install --no-cache-dir --user --no-deps . && har data demo

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD curl --fail http://localhost:8501/_stcore/health || exit 1
# The Space's iframe blocks Streamlit's XSRF cookie, which breaks uploads: XSRF protection is off here only.
CMD ["streamlit", "run", "streamlit_app.py", "--server.port=8501", "--server.address=0.0.0.0", \
     "--server.enableXsrfProtection=false", "--server.maxUploadSize=200", "--server.headless=true"]

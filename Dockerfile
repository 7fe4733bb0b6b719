# Herald: one image for every process of the Procfile (api, worker, flower, release).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY rules ./rules
COPY notifiers ./notifiers
COPY worker ./worker
COPY api ./api
COPY integrations ./integrations
RUN pip install . \
    && useradd --create-home --uid 10001 herald \
    && mkdir -p /app/var \
    && chown herald:herald /app/var

# Never root: a template engine and outbound HTTP run in here.
USER herald
EXPOSE 8080 9810 5555
CMD ["sh", "-c", "herald api --host 0.0.0.0 --port ${PORT:-8080}"]

# Seeded defects, one or more per stage 1 gate: everything a shippable image must not be.
# The test writes .env and deploy-key.pem into the build context at run time; every
# secret here is fake. No USER (root), no HEALTHCHECK, no OCI labels.
ARG BASE=python:3.13-slim
FROM ${BASE}
ENV OPENROUTER_API_KEY=sk-or-v1-0000000000000000000000000000000000000000000000000000000000000000 \
    DATABASE_URL=postgres://u:p@h/db
LABEL io.example.deploy-token="tok-not-a-real-token-1234"
ARG DB_PASSWORD=not-a-real-password
WORKDIR /app
ADD . /app
RUN cd /app && rm deploy-key.pem && echo "seeding with $DB_PASSWORD" > /dev/null
CMD ["python3", "-m", "http.server", "8000"]

# syntax=docker/dockerfile:1
# Infrastructure anomaly detector: the HTTP service and its CLI in one image.
#   docker build -t infra-anomaly-detector:0.1.0 .
#   docker run -p 8080:8080 -e INFLUX_URL=http://influxdb:8086 infra-anomaly-detector:0.1.0
# Configuration is by environment only (src/config.ts, README "Configuration").
# test/integration/deploy-dockerfile.test.ts runs this file's commands outside Docker.

# Build: all dependencies (TypeScript), compile, then drop the dev dependencies.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

# Runtime: production dependencies, the compiled service and the bundled model.
FROM node:20.20.2-bookworm-slim AS runtime
WORKDIR /app
# MODEL_PATH stays unset (its default is the bundled model copied below): setting it would
# name a model and turn learning each host off (LEARN=auto).
# MALLOC_ARENA_MAX=2: glibc's malloc keeps at most two arenas instead of one per thread
# (libuv's and V8's workers): 5-25 MB less resident at 10,000 learning hosts, the same
# cycle time (docs/benchmarks.md, "Memory in learning mode").
ENV HOST=0.0.0.0 \
    PORT=8080 \
    MALLOC_ARENA_MAX=2
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY models/model.json ./models/model.json
# The base image's unprivileged user (uid 1000). The only file the service writes is the
# cached copy of an MLflow model (MODEL_URI; MODEL_CACHE_DIR, .cache/models under /app).
USER node
EXPOSE 8080
# Readiness (200 with a model loaded; still 200 while InfluxDB is unreachable). node, not curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and gets SIGTERM itself (graceful shutdown); no npm or shell between.
# The V8 flags keep the heap close to what is live (a poller of 10,000 learning hosts: about
# 350 MB resident instead of 430-550, same cycle time; docs/benchmarks.md, "The poller"):
# the old generation grows by 20 % between full collections, the young one is 2 x 2 MB.
CMD ["node", "--heap-growing-percent=20", "--max-semi-space-size=2", "dist/src/cli/main.js", "serve"]

import { resolve } from 'node:path';

/** The repository root. */
export const REPO = resolve(__dirname, '..', '..', '..', '..');
export const DOCKERFILE = resolve(REPO, 'Dockerfile');
export const DOCKERIGNORE = resolve(REPO, '.dockerignore');
export const COMPOSE_FILE = resolve(REPO, 'docker', 'docker-compose.yml');
export const ENV_EXAMPLE = resolve(REPO, 'docker', '.env.example');
export const TELEGRAF_CONF = resolve(REPO, 'docker', 'telegraf.conf');
export const PROMETHEUS_YML = resolve(REPO, 'docker', 'prometheus.yml');
export const K8S_DIR = resolve(REPO, 'k8s');

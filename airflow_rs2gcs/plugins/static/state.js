// Constants and the page's shared state.

export const API = "api/v1/";
export const AIRFLOW = "../"; // Airflow's UI, relative to /rs2gcs/
export const GCS_CONSOLE = "https://console.cloud.google.com/storage/browser/_details/";
export const POLL_MS = 1500;
export const LIST_LIMIT = 50;
export const CATALOG_PAGE_SIZE = 100;
export const HISTORY_LIMIT = 30;
export const TENANT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
export const ACTION_ORDER = ["connect", "configure", "sync", "disconnect"];
export const ACTION_LABEL = { connect: "Connect", configure: "Configure", sync: "Sync", disconnect: "Disconnect" };
export const ACTION_VERB = { connect: "connect", configure: "configure", sync: "sync", disconnect: "disconnect" };
export const DONE_STATES = new Set(["success", "failed", "skipped", "upstream_failed", "removed"]);

export const state = {
  meta: null,
  view: 0, // incremented on every route change: stale async work checks it and stops
  list: { q: "", offset: 0 },
};

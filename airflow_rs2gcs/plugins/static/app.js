// The rs2gcs widget page: tenant list, tenant view with the widget's buttons, and their forms.
//
// Vanilla ES module, no build step, no dependency. Every URL is relative to the page (/rs2gcs/): the JSON
// API is "api/v1/...", Airflow's own UI "../". Routing is in the location hash (#/, #/tenants/<id>,
// #/tenants/<id>/configure ...) so it works inside Airflow's iframe and behind any sub-path. No inline
// event handlers and no innerHTML with data: a strict CSP (script-src 'self') is enough.

import { api, errorAlert } from "./api.js";
import { clear, h } from "./dom.js";
import { followOutside } from "./links.js";
import { route } from "./router.js";
import { state } from "./state.js";
import { followAirflowTheme } from "./theme.js";

async function start() {
  followAirflowTheme();
  document.addEventListener("click", followOutside);
  const main = document.getElementById("main");
  try {
    state.meta = await api("meta");
  } catch (err) {
    clear(main).append(h("h2", {}, "Redshift → GCS"), errorAlert(err, "view"));
    return;
  }
  const user = state.meta.user || {};
  document.getElementById("user").textContent = user.name ? `Signed in as ${user.name}${user.can_post ? "" : " (read only)"}` : "";
  window.addEventListener("hashchange", route);
  route();
}

start();

// Light and dark: follow Airflow's colour mode inside its iframe.

// Inside Airflow's iframe (same origin) follow Airflow's own colour mode; elsewhere prefers-color-scheme.
export function followAirflowTheme() {
  let parentRoot = null;
  try {
    if (window.parent !== window) parentRoot = window.parent.document.documentElement;
  } catch {
    parentRoot = null; // cross-origin: keep prefers-color-scheme
  }
  if (!parentRoot) return;
  const apply = () => {
    const cls = parentRoot.classList;
    const scheme = parentRoot.style.colorScheme;
    if (cls.contains("dark") || scheme === "dark") document.documentElement.dataset.theme = "dark";
    else if (cls.contains("light") || scheme === "light") document.documentElement.dataset.theme = "light";
    else delete document.documentElement.dataset.theme;
  };
  apply();
  new MutationObserver(apply).observe(parentRoot, { attributes: true, attributeFilter: ["class", "style"] });
}

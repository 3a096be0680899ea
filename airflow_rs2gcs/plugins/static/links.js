// Links out of the sandboxed iframe, followed from Airflow's own document.

// Airflow 3.3 shows this page in <iframe sandbox="allow-scripts allow-same-origin allow-forms allow-downloads">:
// without allow-top-navigation and allow-popups a target=_top or _blank link is blocked. The page is same
// origin as Airflow, so such a link (data-outside) is followed from Airflow's own document instead. Standalone
// (no parent) or cross-origin, the link's own target does the job.
export function followOutside(ev) {
  const link = ev.target instanceof Element ? ev.target.closest("a[data-outside]") : null;
  if (!link || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  let parentDoc = null;
  try {
    if (window.parent !== window) parentDoc = window.parent.document;
  } catch {
    parentDoc = null;
  }
  if (!parentDoc || !parentDoc.body) return;
  ev.preventDefault();
  const proxy = parentDoc.createElement("a");
  proxy.href = link.href; // already absolute: resolved against this page's URL
  if (link.target === "_blank") {
    proxy.target = "_blank";
    proxy.rel = "noopener noreferrer";
  }
  proxy.hidden = true;
  parentDoc.body.append(proxy);
  proxy.click();
  proxy.remove();
}

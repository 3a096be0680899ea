"""The widget page's static files (``airflow_rs2gcs/plugins/static/``) keep the plugin contract.

No browser here: the files are read as text. They must
- use relative URLs only (the page lives at ``/rs2gcs/`` behind any proxy or sub-path): no ``href``,
  ``src`` or fetched path starting with ``/`` or ``http``; the one absolute URL is the GCS console link
  for manifests (an outside site, opened in a new tab);
- call only the JSON API the contract lists (``api/v1/`` meta, tenants, a tenant, its catalog, columns,
  runs, one run, and the four action POSTs), each POST with ``X-Rs2gcs-Request: 1`` and a JSON body;
- work under a strict Content-Security-Policy (``script-src 'self'``, no ``unsafe-inline``): no inline
  script, inline style attribute or ``on*=`` handler, and no HTML built from strings (``innerHTML``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "airflow_rs2gcs" / "plugins" / "static"
INDEX = STATIC / "index.html"
APP_CSS = STATIC / "app.css"

# The contract's endpoints under api/v1/ (docs: the plugin contract between the API and the page).
API_ROOTS = {"meta", "tenants"}
TENANT_SUBRESOURCES = {"catalog", "columns", "runs"}
ACTIONS = ["connect", "configure", "sync", "disconnect"]
# The only absolute URLs the script may hold: XML namespaces (not fetched), the GCS console, a placeholder.
ALLOWED_ABSOLUTE = {
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xhtml",
    "https://console.cloud.google.com/storage/browser/_details/",
    "https://…",  # the webhook URL field's placeholder text
}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "data"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_script = False
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


@pytest.fixture(scope="module")
def html() -> _Collector:
    parser = _Collector()
    parser.feed(INDEX.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def js() -> str:
    """Every module of the page, as one text: the rules hold for all of them."""
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(STATIC.glob("*.js")))


IMPORT = re.compile(r"""^import \{[^}]*\} from "([^"]+)";$""", re.MULTILINE)


def test_js_modules_are_flat_relative_and_all_reached_from_app_js() -> None:
    # The plugin serves static/<name> only (no sub-paths): modules import each other as "./<name>.js".
    reached, todo = set(), ["app.js"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        for target in IMPORT.findall((STATIC / name).read_text(encoding="utf-8")):
            assert re.fullmatch(r"\./[a-z]+\.js", target), f"{name} imports {target!r}: use ./<name>.js"
            assert (STATIC / target[2:]).is_file(), f"{name} imports {target}, which does not exist"
            todo.append(target[2:])
    modules = {path.name for path in STATIC.glob("*.js")}
    assert reached == modules, f"modules app.js never loads: {sorted(modules - reached)}"


EXPORT = re.compile(r"^export (?:async function|function|class|const|let) ([A-Za-z_$][\w$]*)", re.MULTILINE)


def _code_only(source: str) -> str:
    """The source without comments and quoted strings (template literals stay: they hold code)."""
    source = re.sub(r"//[^\n]*", "", source)
    return re.sub(r""""(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""", '""', source)


def test_js_modules_import_every_name_they_use_from_another() -> None:
    # A missing import is a ReferenceError only when that line runs in a browser: catch it here.
    sources = {path.name: path.read_text(encoding="utf-8") for path in STATIC.glob("*.js")}
    owner = {name: module for module, text in sources.items() for name in EXPORT.findall(text)}
    for module, text in sources.items():
        imported = {
            n.strip() for names in re.findall(r"^import \{([^}]*)\}", text, re.M) for n in names.split(",")
        }
        code = _code_only(IMPORT.sub("", text))
        used = {
            n
            for n, m in owner.items()
            if m != module and re.search(rf"(?<![\w$.]){re.escape(n)}(?![\w$])", code)
        }
        assert used <= imported, f"{module} uses {sorted(used - imported)} without importing them"


def _absolute_literals(source: str) -> set[str]:
    """Strings in the JS source that start like an absolute URL or path: a quote, then http(s):, // or /x."""
    code = re.sub(r"^\s*//.*$", "", source, flags=re.MULTILINE)  # whole-line comments
    return {m.group(1) for m in re.finditer(r"""["'`]((?:https?:|//|/[A-Za-z0-9_.~-])[^"'`\s]*)""", code)}


def _is_absolute(url: str) -> bool:
    return url.startswith(("/", "http:", "https:", "//")) or bool(
        re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I)
    )


def test_the_page_its_entry_module_and_stylesheet_exist() -> None:
    for path in (INDEX, STATIC / "app.js", APP_CSS):
        assert path.is_file(), f"{path} is missing"


def test_html_urls_are_relative(html: _Collector) -> None:
    urls = [
        (tag, name, value)
        for tag, attrs in html.tags
        for name, value in attrs.items()
        if name in URL_ATTRIBUTES
    ]
    assert urls, "index.html links nothing"
    bad = [(tag, name, value) for tag, name, value in urls if value is None or _is_absolute(value)]
    assert not bad, f"absolute URLs in index.html (the page must work behind a sub-path): {bad}"
    scripts = [attrs.get("src") for tag, attrs in html.tags if tag == "script"]
    assert scripts == ["static/app.js"], scripts
    assert "module" in [attrs.get("type") for tag, attrs in html.tags if tag == "script"], (
        "app.js is an ES module"
    )
    sheets = [
        attrs.get("href") for tag, attrs in html.tags if tag == "link" and attrs.get("rel") == "stylesheet"
    ]
    assert sheets == ["static/app.css"], sheets


def test_html_has_nothing_inline_for_a_strict_csp(html: _Collector) -> None:
    handlers = [(tag, name) for tag, attrs in html.tags for name in attrs if name.lower().startswith("on")]
    assert not handlers, f"inline event handlers: {handlers}"
    styles = [tag for tag, attrs in html.tags if "style" in attrs]
    assert not styles, f"inline style attributes: {styles}"
    assert not html.inline_script, "inline <script> code"
    assert "style" not in [tag for tag, _ in html.tags], "inline <style> element"


def test_js_builds_no_html_from_strings(js: str) -> None:
    for pattern in (
        r"\.innerHTML\b",
        r"\.outerHTML\b",
        r"insertAdjacentHTML",
        r"document\.write",
        r"\beval\(",
        r"new Function\(",
        r"""setAttribute\(\s*["']on""",
        r"""["']style["']\s*:""",
    ):
        assert not re.search(pattern, js), f"app.js uses {pattern}: keep a strict CSP possible"


def test_js_urls_are_relative(js: str) -> None:
    absolute = _absolute_literals(js)
    assert absolute <= ALLOWED_ABSOLUTE, f"absolute URLs in app.js: {sorted(absolute - ALLOWED_ABSOLUTE)}"
    assert re.search(r"""const API = "api/v1/";""", js), "the API base is relative: api/v1/"
    assert re.search(r"""const AIRFLOW = "\.\./";""", js), "Airflow's UI is reached relatively: ../"


def test_js_fetches_only_through_the_api_helper(js: str) -> None:
    calls = re.findall(r"\bfetch\(([^,)]*)", js)
    assert calls == ["API + path"], f"every fetch goes through api() and the relative API base: {calls}"
    assert "XMLHttpRequest" not in js and "sendBeacon" not in js and "WebSocket" not in js


def test_js_calls_only_the_contracts_endpoints(js: str) -> None:
    # api("meta"), api(`tenants?...`): the roots; api(tenantPath(...)): a tenant (tenants/{id}/...)
    roots = set()
    for arg in re.findall(r"""(?<!function )\bapi\(\s*([^\s,)]+)""", js):
        if arg.startswith(("tenantPath(", "`${tenantPath(")):
            roots.add("tenants")
            continue
        literal = re.match(r"""["'`]([a-z0-9_]+)""", arg)
        assert literal, f"api() called with a path that is not a literal or tenantPath(): {arg}"
        roots.add(literal.group(1))
    assert re.search(r"""\["tenants", encodeURIComponent\(tenantId\)""", js), (
        "tenantPath builds tenants/{id}/..."
    )
    assert roots <= API_ROOTS, f"endpoints outside the contract: {sorted(roots - API_ROOTS)}"
    assert roots == API_ROOTS, f"the page should read both {sorted(API_ROOTS)}: reads {sorted(roots)}"
    # tenantPath(id, "catalog" | "columns" | "runs", ...): a tenant's sub-resources
    subs = set(re.findall(r"""\btenantPath\([^,()]+,\s*["']([^"']+)["']""", js))
    assert subs == TENANT_SUBRESOURCES, f"tenant sub-resources: {sorted(subs)}"
    # the four actions, POSTed to tenants/{id}/{action}
    order = re.search(r"const ACTION_ORDER = \[([^\]]*)\]", js)
    assert order and re.findall(r'"([a-z]+)"', order.group(1)) == ACTIONS
    posts = re.findall(r"""postAction\([^,]+,\s*["']([a-z]+)["']""", js)
    assert sorted(set(posts)) == sorted(ACTIONS), f"POSTed actions: {posts}"
    assert re.search(r"""api\(tenantPath\(ctx\.tenantId, action\), \{ method: "POST", body \}\)""", js)


def test_js_posts_carry_the_csrf_header_and_json(js: str) -> None:
    assert re.search(r"""init\.headers\["X-Rs2gcs-Request"\] = "1";""", js)
    assert re.search(r"""init\.headers\["Content-Type"\] = "application/json";""", js)
    assert "JSON.stringify(body" in js
    assert 'credentials: "same-origin"' in js, "the session cookie goes only to our own origin"


def test_css_loads_nothing_from_elsewhere() -> None:
    css = APP_CSS.read_text(encoding="utf-8")
    assert "@import" not in css
    for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css):
        assert not _is_absolute(url), f"app.css loads {url}"
    assert "prefers-color-scheme: dark" in css, "dark mode follows the system"


def test_js_links_out_survive_airflows_iframe_sandbox(js: str) -> None:
    # Airflow 3.3 frames the page with sandbox="allow-scripts allow-same-origin allow-forms allow-downloads":
    # no allow-top-navigation or allow-popups: each _top/_blank link is marked and followed from the parent.
    targets = re.findall(r"""target: "(_top|_blank)"(, rel: "[^"]*")?(, "data-outside": "")?""", js)
    assert targets, "the page links to Airflow (runs, DAGs, login)"
    unmarked = [t[0] for t in targets if not t[2]]
    assert not unmarked, f"links with target {unmarked} lack data-outside: the sandbox blocks them"
    assert 'document.addEventListener("click", followOutside)' in js

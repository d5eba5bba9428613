"""What a person sees wrong on a page, measured in the browser: page overflow, clipped tables, and
axe-core's serious and critical findings (the axe-core that the axe-playwright-python wheel carries:
no CDN). Used by the browser walk (tests/browser/test_walk.py) and by scripts/page_probe.py.
"""
import re
from dataclasses import dataclass, field

from axe_playwright_python.sync_playwright import Axe

# Every page a person reaches: the public ones, then (signed in as an owner who is staff) the account's,
# the credits', the operators' and the admin's own; detail pages by following the first link of their kind.
PUBLIC = ["/", "/rankings/?window=month&metric=spend", "/rankings/?window=day", "/rankings/price-index/", "/models/",
          "/accounts/login/", "/accounts/password_reset/", "/no-such-page/"]
FOLLOW_PUBLIC = [("/rankings/", r"^/models/[^/]+/[^/]+/$"), ("/rankings/", r"^/providers/[^/]+/$"),
                 ("/rankings/", r"^/apps/[^/]+/$"), ("/models/", r"^/authors/[^/]+/$")]
ACCOUNT = ["/account/", "/account/activity/", "/account/activity/?metric=tokens&group_by=model&then_by=api_key",
           "/account/generations/", "/account/reports/", "/account/credits/", "/account/credits/budgets/", "/account/keys/",
           "/account/statements/", "/account/alerts/",
           "/account/settings/", "/account/members/", "/account/tokens/", "/accounts/password_change/",
           "/ops/ingest/", "/ops/unpriced/", "/ops/reprice/"]
FOLLOW_ACCOUNT = [("/account/generations/", r"^/account/generations/[^/?]+/$"),
                  ("/account/statements/", r"^/account/statements/[^/]+/$"),
                  ("/account/reports/", r"^/account/reports/monthly/"), ("/account/alerts/", r"^/account/alerts/\d+/$"),
                  ("/ops/ingest/", r"^/ops/ingest/\d+/$"),
                  ("/admin/billing/account/", r"^/admin/billing/account/\d+/change/$")]


def follow(page, base: str, start: str, pattern: str) -> str | None:
    """The first link on `start` whose path matches `pattern`."""
    page.goto(base + start)
    for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
        if re.match(pattern, href):
            return href
    return None


def detail_paths(page, base: str, follows: list[tuple[str, str]]) -> list[str]:
    """The detail pages found by following links; for an account in the admin, its balance adjustment page."""
    found = [h for start, pattern in follows if (h := follow(page, base, start, pattern))]
    # The admin's change pages are Django's own; the adjustment page is Tokengrid's.
    return [h.replace("/change/", "/adjust/") if re.match(r"^/admin/billing/account/\d+/change/$", h) else h
            for h in found]


LAYOUT_JS = """() => {
  const root = document.documentElement;
  const overflow = Math.max(0, root.scrollWidth - root.clientWidth);
  const clipped = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  // A table is clipped when it runs past the box of an ancestor that does not scroll it: the text
  // past that edge is hidden, or overlaps the next card. An ancestor that scrolls it is fine.
  for (const table of document.querySelectorAll('main table')) {
    if (!table.getClientRects().length) continue;  // not shown (a hidden tab, print only)
    const right = table.getBoundingClientRect().right;
    for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
      const style = getComputedStyle(el);
      if (['auto', 'scroll'].includes(style.overflowX)) break;
      if (right > el.getBoundingClientRect().right + 1) {
        const heading = table.closest('section, .card')?.querySelector('h2, h3')?.textContent?.trim();
        clipped.push(`${heading || name(table)} runs ${Math.round(right - el.getBoundingClientRect().right)}px past ${name(el)}`);
        break;
      }
    }
  }
  // At a desktop width a table should fit its card: one that must be scrolled sideways hides columns.
  if (root.clientWidth >= 1280) {
    for (const wrap of document.querySelectorAll('main .table-wrap')) {
      if (!wrap.getClientRects().length || wrap.closest('details:not([open])')) continue;
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        const heading = wrap.closest('section, .card')?.querySelector('h2, h3')?.textContent?.trim();
        clipped.push(`${heading || name(wrap.querySelector('table') || wrap)} needs ${wrap.scrollWidth - wrap.clientWidth}px of sideways scrolling`);
      }
    }
  }
  return {overflow, clipped};
}"""


@dataclass
class Findings:
    path: str
    width: int
    overflow: int = 0
    clipped: list[str] = field(default_factory=list)
    axe: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        found = [f"the page is {self.overflow}px wider than the window"] if self.overflow else []
        return found + [f"clipped: {c}" for c in self.clipped] + [f"axe: {a}" for a in self.axe]


_axe = Axe()


def probe(page, path: str, *, accessibility: bool = True) -> Findings:
    """Measure the loaded page (call after it is drawn)."""
    layout = page.evaluate(LAYOUT_JS)
    found = Findings(path=path, width=page.viewport_size["width"], overflow=layout["overflow"],
                     clipped=layout["clipped"])
    if accessibility:
        results = _axe.run(page, options={"resultTypes": ["violations"]})
        for violation in results.response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = ", ".join(str(node["target"][0]) for node in violation["nodes"][:3])
                found.axe.append(f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} nodes: {targets})")
    return found


def charts_drawn(page, timeout: float = 15_000) -> None:
    """Wait until every chart of the page is drawn."""
    if page.locator(".chart").count():
        page.wait_for_function("() => [...document.querySelectorAll('.chart')]"
                               ".every(chart => chart.dataset.drawn === 'true')", timeout=timeout)

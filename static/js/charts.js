// Draw every chart whose plotly figure sits in a <script type="application/json" id="X-data">
// (written by Django's json_script, so untrusted labels are escaped) into the element with id X.
// Figures are built server-side by plotly in Python (core/charts.py: top series and "Others", one
// colour per name across the page, hover texts in the page's formats); the table beside each chart is
// the no-JS view. Colours of text and grid follow the page's light or dark scheme, live.
(() => {
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const theme = () => {
    const ink = dark.matches ? "#e6e9ee" : "#17202a";
    const grid = dark.matches ? "#2a323c" : "#e2e6ea";
    const axis = { gridcolor: grid, zerolinecolor: grid, linecolor: grid };
    return { font: { color: ink }, xaxis: axis, yaxis: axis, yaxis2: axis,
             hoverlabel: { bgcolor: dark.matches ? "#161c24" : "#ffffff", font: { color: ink } } };
  };
  const merge = (layout) => {
    const t = theme();
    const out = Object.assign({ autosize: true, margin: { t: 30, r: 10, b: 40, l: 50 } }, layout, { font: t.font, hoverlabel: t.hoverlabel });
    for (const axis of ["xaxis", "yaxis", "yaxis2"]) {
      if (axis === "yaxis2" && !layout.yaxis2) continue;
      out[axis] = Object.assign({}, layout[axis] || {}, t[axis]);
    }
    return out;
  };
  const drawn = [];
  document.addEventListener("DOMContentLoaded", () => {
    if (!window.Plotly) return;
    document.querySelectorAll('script[type="application/json"][id$="-data"]').forEach((node) => {
      const target = document.getElementById(node.id.slice(0, -"-data".length));
      if (!target) return;
      const figure = JSON.parse(node.textContent);
      const layout = figure.layout || {};
      window.Plotly.newPlot(target, figure.data, merge(layout), { responsive: true, displaylogo: false });
      drawn.push([target, layout]);
      target.dataset.drawn = "true";
    });
  });
  dark.addEventListener("change", () => {
    drawn.forEach(([target, layout]) => window.Plotly.relayout(target, merge(layout)));
  });
})();

// Draw every chart whose plotly figure sits in a <script type="application/json" id="X-data">
// (written by Django's json_script, so untrusted labels are escaped) into the element with id X.
// Figures are built server-side by plotly in Python; the table beside each chart is the no-JS view.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.Plotly) return;
  document.querySelectorAll('script[type="application/json"][id$="-data"]').forEach((node) => {
    const target = document.getElementById(node.id.slice(0, -"-data".length));
    if (!target) return;
    const figure = JSON.parse(node.textContent);
    const layout = Object.assign({ autosize: true, margin: { t: 30, r: 10, b: 40, l: 50 } }, figure.layout || {});
    window.Plotly.newPlot(target, figure.data, layout, { responsive: true, displaylogo: false });
    target.dataset.drawn = "true";
  });
});

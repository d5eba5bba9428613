// Draw every chart whose figure JSON sits in a <script type="application/json" data-chart="ID">.
// Figures are built server-side by plotly (Python); the table beside each chart is the no-JS view.
document.addEventListener("DOMContentLoaded", () => {
  if (!window.Plotly) return;
  document.querySelectorAll('script[type="application/json"][data-chart]').forEach((node) => {
    const target = document.getElementById(node.dataset.chart);
    if (!target) return;
    const figure = JSON.parse(node.textContent);
    const layout = Object.assign({ autosize: true, margin: { t: 30, r: 10, b: 40, l: 50 } }, figure.layout || {});
    window.Plotly.newPlot(target, figure.data, layout, { responsive: true, displaylogo: false });
    target.dataset.drawn = "true";
  });
});

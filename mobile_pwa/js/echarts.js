// Apache ECharts (vendored, /app/vendor/echarts/, see VERSION.md there), loaded once and only by the pages that
// draw with it: the file is large, and the alarm pages must start fast on a phone. The CSP allows our own
// scripts only ('self'), which this script tag is.

const SRC = "/app/vendor/echarts/echarts.min.js";
let loading = null;

/** The ``echarts`` global, loading the script on first use. */
export function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = SRC;
    script.async = true;
    script.onload = () => (window.echarts ? resolve(window.echarts) : reject(new Error("ECharts did not load")));
    script.onerror = () => { loading = null; script.remove(); reject(new Error(`cannot load ${SRC}`)); };
    document.head.append(script);
  });
  return loading;
}

/** Draw ``option`` into ``el`` (re-using its chart); tooltips are drawn on the canvas (richText), because the
 *  CSP forbids the inline styles of ECharts' HTML tooltips. No animation: the figures are right at once, and
 *  kiosk PCs and phones spend no CPU on it. */
export async function draw(el, option) {
  const echarts = await loadECharts();
  const chart = echarts.getInstanceByDom(el) || echarts.init(el, "dark", { renderer: "canvas" });
  chart.setOption({ backgroundColor: "transparent", animation: false, ...option,
                    tooltip: { renderMode: "richText", ...(option.tooltip || {}) } }, true);
  return chart;
}

/** Resize every chart on the page with the window. */
export function resizeCharts(root = document) {
  if (!window.echarts) return;
  for (const el of root.querySelectorAll("[_echarts_instance_]")) window.echarts.getInstanceByDom(el)?.resize();
}

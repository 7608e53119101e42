// The resources view: SVG charts of CPU, memory, disk and jobs, fetched
// with the token header and shown through object URLs, because an
// <img src> request cannot carry an Authorization header.

import { request } from './api.js';
import { el } from './dom.js';

const metrics = [
  { name: 'cpu', title: 'CPU' },
  { name: 'memory', title: 'Memory' },
  { name: 'disk', title: 'Disk' },
  { name: 'jobs', title: 'Jobs' },
];

const rangeTitles = { '1h': 'the last hour', '24h': 'the last day' };

// ChartsView loads the four charts for the chosen range.
export class ChartsView {
  constructor(root) {
    this.grid = root.querySelector('#charts');
    this.status = root.querySelector('#charts-status');
    this.buttons = [...root.querySelectorAll('[data-range]')];
    this.range = '1h';
    this.urls = new Map();
    this.figures = new Map();
    for (const m of metrics) {
      const img = el('img', { alt: '', width: 640, height: 240 });
      const caption = el('figcaption');
      const figure = el('figure', { class: 'chart', dataset: { metric: m.name } }, img, caption);
      this.figures.set(m.name, { figure, img, caption });
      this.grid.append(figure);
    }
    for (const button of this.buttons) {
      button.addEventListener('click', () => {
        this.range = button.dataset.range;
        this.load();
      });
    }
  }

  // load fetches every chart for the current range, replacing the old
  // images only once the new ones arrived.
  async load() {
    for (const button of this.buttons) {
      button.setAttribute('aria-pressed', String(button.dataset.range === this.range));
    }
    const range = this.range;
    const results = await Promise.allSettled(metrics.map((m) => this.loadChart(m, range)));
    const failed = results.filter((r) => r.status === 'rejected');
    this.status.textContent = failed.length === 0
      ? `Charts of ${rangeTitles[range]}, loaded ${new Date().toLocaleTimeString()}.`
      : `Some charts could not be loaded: ${failed[0].reason.message}`;
  }

  async loadChart(metric, range) {
    const resp = await request(`/monitor/charts/${metric.name}.svg?range=${range}`,
      { headers: { Accept: 'image/svg+xml' } });
    const blob = await resp.blob();
    const url = URL.createObjectURL(new Blob([blob], { type: 'image/svg+xml' }));
    const { img, caption } = this.figures.get(metric.name);
    const old = this.urls.get(metric.name);
    img.src = url;
    img.alt = `${metric.title} over ${rangeTitles[range]}`;
    caption.textContent = `${metric.title}, ${rangeTitles[range]}`;
    this.urls.set(metric.name, url);
    if (old) URL.revokeObjectURL(old);
  }
}

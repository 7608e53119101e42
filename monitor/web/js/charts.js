// The resources view: the latest resource sample as text, and SVG
// charts of CPU, memory, disk and jobs, fetched with the token header
// and shown through object URLs, because an <img src> request cannot
// carry an Authorization header.

import { getJSON, request } from './api.js';
import { el, replaceChildren, plural, formatBytes } from './dom.js';

const metrics = [
  { name: 'cpu', title: 'CPU' },
  { name: 'memory', title: 'Memory' },
  { name: 'disk', title: 'Disk' },
  { name: 'jobs', title: 'Jobs' },
];

const rangeTitles = { '5m': 'the last 5 minutes', '1h': 'the last hour', '24h': 'the last day' };

// ChartsView loads the summary and the four charts for the chosen range.
export class ChartsView {
  constructor(root) {
    this.summary = root.querySelector('#resources-now');
    this.grid = root.querySelector('#charts');
    this.status = root.querySelector('#charts-status');
    this.buttons = [...root.querySelectorAll('[data-range]')];
    this.range = '1h';
    this.urls = new Map();
    this.figures = new Map();
    for (const m of metrics) {
      const img = el('img', { alt: '', width: 768, height: 288 });
      const caption = el('figcaption');
      const figure = el('figure', { class: 'chart', dataset: { metric: m.name } }, img, caption);
      this.figures.set(m.name, { img, caption });
      this.grid.append(figure);
    }
    for (const button of this.buttons) {
      button.addEventListener('click', () => {
        this.range = button.dataset.range;
        this.load();
      });
    }
  }

  // load fetches the summary and every chart for the current range. An
  // old image stays until its new one arrived.
  async load() {
    for (const button of this.buttons) {
      button.setAttribute('aria-pressed', String(button.dataset.range === this.range));
    }
    const range = this.range;
    const results = await Promise.allSettled([this.loadSummary(), ...metrics.map((m) => this.loadChart(m, range))]);
    const failed = results.find((r) => r.status === 'rejected');
    this.status.textContent = failed
      ? `Not everything could be loaded: ${failed.reason.message}`
      : `Charts of ${rangeTitles[range]}, loaded at ${new Date().toLocaleTimeString()}.`;
  }

  async loadSummary() {
    const from = new Date(Date.now() - 60000).toISOString();
    const { samples } = await getJSON(`/monitor/resources?from=${encodeURIComponent(from)}`);
    const latest = samples[samples.length - 1];
    if (!latest) {
      replaceChildren(this.summary, el('p', { text: 'No resource sample was taken in the last minute.' }));
      return;
    }
    const rows = summaryRows(latest).map(([term, value]) => [el('dt', { text: term }), el('dd', { text: value })]);
    replaceChildren(this.summary, el('dl', { class: 'summary' }, rows.flat()));
  }

  async loadChart(metric, range) {
    const resp = await request(`/monitor/charts/${metric.name}.svg?range=${range}`,
      { headers: { Accept: 'image/svg+xml' } });
    const blob = await resp.blob();
    const url = URL.createObjectURL(new Blob([blob], { type: 'image/svg+xml' }));
    const { img, caption } = this.figures.get(metric.name);
    const loaded = new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error(`the ${metric.title} chart is not a valid image`));
    });
    img.src = url;
    img.alt = `${metric.title} over ${rangeTitles[range]}`;
    caption.textContent = `${metric.title}, ${rangeTitles[range]}`;
    const old = this.urls.get(metric.name);
    this.urls.set(metric.name, url);
    if (old) URL.revokeObjectURL(old);
    await loaded;
  }
}

// summaryRows returns [term, value] pairs that describe one resource
// sample. A value the sampler could not read is left out.
function summaryRows(s) {
  const mean = (stats) => stats?.mean;
  const rows = [];
  const add = (term, ...values) => {
    if (values.every((v) => v !== undefined && v !== null)) rows.push([term, values]);
  };
  add('CPU, machine', mean(s.cpuPercent));
  add('CPU, lambdaflow', mean(s.processCpuPercent));
  add('Memory', mean(s.memoryUsedBytes), mean(s.memoryTotalBytes));
  add('Disk', mean(s.diskUsedBytes), mean(s.diskTotalBytes));
  add('Disk I/O', mean(s.diskReadBytesPerSecond), mean(s.diskWriteBytesPerSecond));
  add('Jobs', mean(s.runningJobs), mean(s.concurrentJobs), mean(s.queuedJobs), mean(s.blockedJobs));
  return rows.map(([term, v]) => [term, formatSummary(term, v)]);
}

function formatSummary(term, v) {
  switch (term) {
    case 'CPU, machine':
    case 'CPU, lambdaflow':
      return `${v[0].toFixed(1)} %`;
    case 'Memory':
    case 'Disk':
      return `${formatBytes(v[0])} used of ${formatBytes(v[1])}`;
    case 'Disk I/O':
      return `${formatBytes(v[0])}/s read, ${formatBytes(v[1])}/s written`;
    default:
      return `${Math.round(v[0])} running of ${plural(Math.round(v[1]), 'slot')}, ` +
        `${Math.round(v[2])} queued, ${Math.round(v[3])} blocked`;
  }
}

// The nodes section of the queue view: every node that runs jobs, alive
// or dead, with its slots, CPU, memory and running jobs. Outside a
// cluster the server lists one node, "local".

import { getJSON } from './api.js';
import { el, replaceChildren, formatBytes, formatTime, shortID } from './dom.js';

// loadNodes returns the node list of GET /api/v1/monitor/nodes.
export async function loadNodes() {
  return getJSON('/monitor/nodes');
}

// NodesView renders the node list as a table.
export class NodesView {
  constructor(root) {
    this.list = root.querySelector('#nodes');
  }

  render({ nodes }) {
    if (!nodes || nodes.length === 0) {
      replaceChildren(this.list, el('p', { class: 'empty', text: 'No node is registered.' }));
      return;
    }
    const table = el('table', { class: 'nodes' },
      el('caption', { class: 'visually-hidden', text: 'Nodes' }),
      el('thead', {}, el('tr', {},
        el('th', { scope: 'col', text: 'Node' }), el('th', { scope: 'col', text: 'State' }),
        el('th', { scope: 'col', text: 'Slots' }), el('th', { scope: 'col', text: 'CPU' }),
        el('th', { scope: 'col', text: 'Memory' }), el('th', { scope: 'col', text: 'Running jobs' }))),
      el('tbody', {}, nodes.map(nodeRow)));
    replaceChildren(this.list, el('div', { class: 'table-wrap' }, table));
  }
}

function nodeRow(node) {
  const running = node.runningJobs || [];
  const resources = node.resources || {};
  const cpu = resources.cpuPercent?.mean;
  const used = resources.memoryUsedBytes?.mean;
  const total = resources.memoryTotalBytes?.mean;
  // A dead node's figures are from its last heartbeat, so its time is
  // shown beside the state.
  const state = node.alive
    ? el('span', { class: 'state node-alive', text: 'alive' })
    : [el('span', { class: 'state node-dead', text: 'dead' }),
      el('span', { class: 'meta', text: ` last heartbeat ${formatTime(node.heartbeatAt)}` })];
  const jobs = running.length === 0 ? '—' : running.flatMap((id, i) => [
    i > 0 ? ', ' : null,
    el('span', { class: 'mono', title: id, dataset: { job: id }, text: shortID(id) }),
  ]);
  return el('tr', { dataset: { node: node.name, alive: String(node.alive) } },
    el('th', { scope: 'row', text: node.name }),
    el('td', {}, state),
    el('td', { class: 'slots', text: `${running.length} of ${node.concurrentJobs} used, cap ${node.maxConcurrentJobs}` }),
    el('td', { class: 'cpu', text: cpu === undefined || cpu === null ? '—' : `${cpu.toFixed(1)} %` }),
    el('td', {
      class: 'memory',
      text: used === undefined || used === null || !total ? '—' : `${formatBytes(used)} of ${formatBytes(total)}`,
    }),
    el('td', { class: 'running' }, jobs));
}

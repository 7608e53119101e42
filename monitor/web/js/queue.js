// The queue view: running jobs, waiting jobs with their wait reason,
// recently finished jobs, each with its blocks, and the Stop dialog.

import { getJSON, request, ApiError } from './api.js';
import { el, replaceChildren, formatDuration, formatTime, since, shortID, plural } from './dom.js';

const finalStates = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

// isFinal reports whether a job state is one a job never leaves.
export function isFinal(state) {
  return finalStates.has(state);
}

// loadQueue returns the queue view of GET /api/v1/monitor/queue, with as
// many finished jobs as the server's --monitor-recent-jobs.
export async function loadQueue() {
  return getJSON('/monitor/queue');
}

// QueueView renders the queue into its section of the page.
export class QueueView {
  constructor(root, { onStop }) {
    this.counts = root.querySelector('#queue-counts');
    this.running = root.querySelector('#running');
    this.waiting = root.querySelector('#waiting');
    this.recent = root.querySelector('#recent');
    this.onStop = onStop;
    // openDetails holds the ids of finished jobs whose block list the
    // user opened, so a refresh keeps them open.
    this.openDetails = new Set();
  }

  render(queue) {
    const counts = queue.counts || {};
    this.counts.textContent = `${plural(counts.running ?? queue.running.length, 'job')} running, ` +
      `${counts.queued ?? 0} queued for a slot, ${counts.blocked ?? 0} blocked by a project lock.`;
    replaceChildren(this.running, ...this.list(queue.running, 'No job is running.'));
    replaceChildren(this.waiting, ...this.list(queue.waiting, 'No job is waiting.'));
    replaceChildren(this.recent, ...this.list(queue.recent, 'No job has finished yet.'));
  }

  list(jobs, emptyText) {
    if (!jobs || jobs.length === 0) return [el('p', { class: 'empty', text: emptyText })];
    return jobs.map((job) => this.jobCard(job));
  }

  jobCard(job) {
    const title = el('h4', {}, job.project,
      job.kind === 'lambda' ? el('span', { class: 'kind', text: ' lambda' }) : null);
    const stoppable = !isFinal(job.state) && job.state !== 'CANCELLING';
    const stop = stoppable
      ? el('button', {
        type: 'button', class: 'stop danger', dataset: { focusKey: `stop-${job.id}`, job: job.id },
        'aria-label': `Stop job ${shortID(job.id)} of ${job.project}`, text: 'Stop',
      })
      : null;
    stop?.addEventListener('click', () => this.onStop(job));

    return el('article', { class: 'job', dataset: { jobId: job.id, state: job.state } },
      el('header', {}, title, stateBadge(job.state), stop),
      el('p', { class: 'meta' }, jobMeta(job)),
      waitText(job),
      job.error ? el('p', { class: 'job-error', text: `${job.error.type}: ${job.error.message}` }) : null,
      // A stopped job's CANCELLED error already names who stopped it.
      job.stop && !job.error ? el('p', { class: 'meta', text: `Stop requested by ${job.stop.by}${job.stop.reason ? `: ${job.stop.reason}` : ''}` }) : null,
      this.blocks(job));
  }

  blocks(job) {
    const table = blocksTable(job);
    if (!table || !isFinal(job.state)) return table;
    const details = el('details', { dataset: { focusKey: `blocks-${job.id}` } },
      el('summary', { text: `Blocks (${job.blocks.length})` }), table);
    details.open = this.openDetails.has(job.id);
    details.addEventListener('toggle', () => {
      if (details.open) this.openDetails.add(job.id);
      else this.openDetails.delete(job.id);
    });
    return details;
  }
}

function stateBadge(state) {
  return el('span', { class: `state state-${state}`, text: state });
}

function jobMeta(job) {
  const parts = [`Job ${shortID(job.id)}`];
  // Only jobs of a cluster run on a named node.
  if (job.node) parts.push(`node ${job.node}`);
  if (job.attempt > 1) parts.push(`attempt ${job.attempt}`);
  if (job.startedAt) {
    parts.push(`started ${formatTime(job.startedAt)}`);
    parts.push(`${job.finishedAt ? 'took' : 'running for'} ${formatDuration(since(job.startedAt, job.finishedAt))}`);
  } else {
    parts.push(`submitted ${formatTime(job.submittedAt)}`);
  }
  return el('span', { title: job.id, text: parts.join(' · ') });
}

function waitText(job) {
  const wait = job.waitingFor;
  if (!wait) return null;
  const position = job.position ? `Position ${job.position}. ` : '';
  const estimate = job.estimatedWaitMs ? ` Estimated wait ${formatDuration(job.estimatedWaitMs)}.` : '';
  const reason = wait.reason === 'PROJECT_LOCK'
    ? `PROJECT_LOCK: waits for job ${shortID(wait.blockedBy)} of the same project.`
    : 'SLOT: waits for a free slot.';
  return el('p', { class: 'wait', dataset: { reason: wait.reason } }, `${position}${reason}${estimate}`);
}

function blocksTable(job) {
  if (!job.blocks || job.blocks.length === 0) return null;
  const rows = job.blocks.map((b) => {
    const duration = b.durationMs ?? (b.startedAt ? since(b.startedAt, b.finishedAt) : null);
    const rowsText = b.rowsOut === null || b.rowsOut === undefined ? '' : `${b.rowsIn ?? 0} → ${b.rowsOut}`;
    return el('tr', { dataset: { block: b.name, state: b.state } },
      el('th', { scope: 'row' }, b.name, el('span', { class: 'block-type', text: ` ${b.type}` })),
      el('td', {}, stateBadge(b.state), b.error ? el('span', { class: 'block-error', text: ` ${b.error}` }) : null),
      el('td', { text: formatDuration(duration) }),
      el('td', { text: rowsText }));
  });
  return el('table', { class: 'blocks' },
    el('caption', { class: 'visually-hidden', text: `Blocks of job ${shortID(job.id)}` }),
    el('thead', {}, el('tr', {},
      el('th', { scope: 'col', text: 'Block' }), el('th', { scope: 'col', text: 'State' }),
      el('th', { scope: 'col', text: 'Duration' }), el('th', { scope: 'col', text: 'Rows in → out' }))),
    el('tbody', {}, rows));
}

// StopDialog requests confirmation before it stops a job.
export class StopDialog {
  constructor(dialog, { onStopped, onError }) {
    this.dialog = dialog;
    this.text = dialog.querySelector('#stop-text');
    this.reason = dialog.querySelector('#stop-reason');
    this.onStopped = onStopped;
    this.onError = onError;
    this.job = null;
    this.returnFocus = null;
    dialog.addEventListener('close', () => this.closed());
  }

  open(job) {
    this.job = job;
    this.returnFocus = document.activeElement;
    const running = job.state === 'RUNNING';
    this.text.textContent = `Stop job ${shortID(job.id)} of ${job.project} (${job.state})? ` +
      (running ? 'Its running blocks are cancelled and the blocks not yet started are skipped.'
        : 'It leaves the queue at once.');
    this.reason.value = '';
    this.dialog.returnValue = '';
    this.dialog.showModal();
  }

  async closed() {
    // The close event is queued, so it may arrive after the dialog was
    // opened again for the next stop. That open owns this.job.
    if (this.dialog.open) return;
    const job = this.job;
    this.job = null;
    // A live refresh may have replaced the button that opened the
    // dialog, so its successor is found by its focus key.
    const key = this.returnFocus?.dataset?.focusKey;
    const target = key ? document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : this.returnFocus;
    if (target?.isConnected) target.focus();
    if (this.dialog.returnValue !== 'stop' || !job) return;
    try {
      const reason = this.reason.value.trim();
      await request(`/jobs/${encodeURIComponent(job.id)}/stop`, { method: 'POST', json: reason ? { reason } : {} });
      this.onStopped(job);
    } catch (err) {
      this.onError(err instanceof ApiError ? `Job ${shortID(job.id)} was not stopped: ${err.message}` : String(err));
    }
  }
}

// The slot-limit form: shows the limit in force and the core cap, states
// what a new value would do before it is saved, and saves it with
// PATCH /api/v1/settings.

import { sendJSON, ApiError } from './api.js';
import { plural } from './dom.js';

// effectText states what requesting n slots does under the cap.
export function effectText(n, cap) {
  if (!Number.isInteger(n) || n < 1) return 'Enter a whole number of 1 or more.';
  if (n <= cap) return `${plural(n, 'job')} may run at once; requests above ${cap} are capped.`;
  return `${n} is above the cap of ${cap}, so ${plural(cap, 'job')} may run at once.`;
}

// SlotsForm keeps the form in step with the settings.
export class SlotsForm {
  constructor(root, { onSaved }) {
    this.now = root.querySelector('#slots-now');
    this.form = root.querySelector('#slots-form');
    this.input = root.querySelector('#slots-input');
    this.effect = root.querySelector('#slots-effect');
    this.error = root.querySelector('#slots-error');
    this.settings = null;
    // saved is set after a save until the user edits the value again,
    // so that the effect line keeps confirming it.
    this.saved = false;
    this.onSaved = onSaved;
    this.input.addEventListener('input', () => {
      this.saved = false;
      this.showEffect();
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.save();
    });
  }

  // update shows settings, the shape of GET /api/v1/settings. The input
  // keeps what the user is typing unless force is set.
  update(settings, force = false) {
    this.settings = settings;
    const { concurrentJobs, requestedConcurrentJobs, maxConcurrentJobs, queueLimit } = settings;
    const requested = requestedConcurrentJobs === concurrentJobs
      ? '' : ` (requested ${requestedConcurrentJobs}, capped)`;
    const cluster = settings.clusterConcurrentJobs == null
      ? '' : ` Cluster-wide cap: ${plural(settings.clusterConcurrentJobs, 'job')} at once on all nodes.`;
    this.now.textContent = `In force: ${plural(concurrentJobs, 'job')} at once${requested}. ` +
      `Cap: ${maxConcurrentJobs}, the CPU cores the server may use. Queue limit: ${queueLimit} waiting jobs.${cluster}`;
    if (force || document.activeElement !== this.input) {
      this.input.value = String(requestedConcurrentJobs);
      this.showEffect();
    }
  }

  showEffect() {
    if (!this.settings) return;
    const value = this.input.value.trim();
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    const saved = this.saved ? 'Saved. ' : '';
    this.effect.textContent = saved + effectText(n, this.settings.maxConcurrentJobs);
  }

  async save() {
    this.saved = false;
    this.error.textContent = '';
    this.input.removeAttribute('aria-invalid');
    const value = this.input.value.trim();
    if (!/^\d+$/.test(value) || Number(value) < 1) {
      this.fail('Enter a whole number of 1 or more.');
      return;
    }
    try {
      const { body } = await sendJSON('PATCH', '/settings', { concurrentJobs: Number(value) });
      this.saved = true;
      this.update(body, true);
      this.onSaved(body);
    } catch (err) {
      const field = err instanceof ApiError ? err.fieldErrors.find((f) => f.field === 'concurrentJobs') : null;
      this.fail(field ? field.message : err.message);
    }
  }

  fail(message) {
    this.error.textContent = message;
    this.input.setAttribute('aria-invalid', 'true');
    this.input.focus();
  }
}

// The projects view: one form per project, built from its parameter
// declarations, that invokes the project as a lambda and follows the
// job to its end.

import { getJSON, request, ApiError } from './api.js';
import { el, replaceChildren, formatCell, formatDuration, formatValue, shortID, plural } from './dom.js';
import { isFinal } from './queue.js';

// How often a followed job is fetched when no event arrives, in ms.
const followPollMs = 2000;

// ProjectsView lists the projects and runs their forms.
export class ProjectsView {
  constructor(root) {
    this.list = root.querySelector('#projects');
    this.status = root.querySelector('#projects-status');
    // followers maps a job id to the function that refreshes its panel.
    this.followers = new Map();
  }

  async load() {
    const { projects } = await getJSON('/projects');
    this.status.textContent = projects.length === 0 ? 'No project is stored.' : `${plural(projects.length, 'project')}.`;
    replaceChildren(this.list, ...projects.map((p) => this.projectCard(p)));
  }

  // jobEvent refreshes the panel of a followed job when an event names it.
  jobEvent(event) {
    const refresh = this.followers.get(event.job);
    if (refresh) refresh();
  }

  projectCard(project) {
    const fields = (project.parameters || []).map((p) => parameterField(project, p));
    const status = el('p', { class: 'form-status', role: 'status' });
    const result = el('div', { class: 'run-result' });
    const form = el('form', { novalidate: true, dataset: { project: project.name } },
      fields.length > 0
        ? el('fieldset', {}, el('legend', { text: 'Parameters' }), fields)
        : el('p', { class: 'meta', text: 'This project declares no parameters.' }),
      el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Run as lambda' })),
      status);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.invoke(project, form, status, result);
    });
    return el('section', { class: 'card project', 'aria-labelledby': `project-${project.name}`, dataset: { project: project.name } },
      el('h3', { id: `project-${project.name}`, text: project.name }),
      project.description ? el('p', { text: project.description }) : null,
      form, result);
  }

  async invoke(project, form, status, result) {
    clearErrors(form);
    if (!checkForm(form)) {
      status.textContent = 'Correct the marked fields.';
      return;
    }
    // A busy flag, not a disabled button, stops a second submission,
    // because a disabled button would drop the keyboard focus.
    if (form.dataset.busy) return;
    form.dataset.busy = 'true';
    const { values, files } = readForm(project, form);
    status.textContent = 'Submitting…';
    try {
      const job = await submit(project.name, values, files);
      status.textContent = `Job ${shortID(job.id)} submitted.`;
      this.follow(job, result);
    } catch (err) {
      status.textContent = err.message;
      if (err instanceof ApiError) showFieldErrors(form, err.fieldErrors);
    } finally {
      delete form.dataset.busy;
    }
  }

  // follow shows the job in panel and refreshes it on its events, and
  // on a timer in case the event stream is down, until the job ends.
  follow(job, panel) {
    let timer = null;
    let fetching = false;
    const refresh = async () => {
      if (fetching) return;
      fetching = true;
      clearTimeout(timer);
      try {
        job = await getJSON(`/jobs/${encodeURIComponent(job.id)}`);
        showRun(panel, job);
      } catch (err) {
        panel.querySelector('.follow-error')?.remove();
        panel.append(el('p', { class: 'error follow-error', text: `Reading job ${shortID(job.id)} failed: ${err.message}` }));
      } finally {
        fetching = false;
      }
      if (isFinal(job.state)) {
        this.followers.delete(job.id);
      } else {
        timer = setTimeout(refresh, followPollMs);
      }
    };
    this.followers.set(job.id, refresh);
    showRun(panel, job);
    refresh();
  }
}

// submit posts the lambda request, as multipart/form-data when files
// are attached, and returns the queued job.
async function submit(projectName, values, files) {
  const path = `/projects/${encodeURIComponent(projectName)}/lambda`;
  const body = { parameters: values };
  if (files.length === 0) {
    const resp = await request(path, { method: 'POST', json: body });
    return resp.json();
  }
  const form = new FormData();
  form.append('request', JSON.stringify(body));
  for (const { name, file } of files) form.append(name, file, file.name);
  const resp = await request(path, { method: 'POST', body: form });
  return resp.json();
}

function fieldID(project, param) {
  return `param-${project.name}-${param.name}`;
}

// initialValue is the value that a run without this parameter would
// use: the project's current value, else the declared default.
function initialValue(project, param) {
  const current = project.values?.[param.name];
  return current !== undefined && current !== null ? current : param.default;
}

// parameterField builds the labelled input for one parameter, with the
// constraints of its declaration as HTML attributes.
function parameterField(project, param) {
  const id = fieldID(project, param);
  const value = initialValue(project, param);
  const input = parameterInput(param, id, value);
  input.dataset.paramInput = param.name;
  input.setAttribute('aria-describedby', `${id}-hint ${id}-error`);
  if (param.required && param.type !== 'file') input.required = true;

  const label = el('label', { for: id }, param.name,
    param.required ? el('span', { class: 'required', text: ' (required)' }) : null);
  const field = el('div', { class: 'field', dataset: { param: param.name } }, label, input);
  if (param.type === 'file') {
    const upload = el('input', { type: 'file', id: `${id}-upload`, 'aria-describedby': `${id}-hint ${id}-error` });
    upload.dataset.upload = param.name;
    field.append(el('label', { for: `${id}-upload`, text: `or upload a file for ${param.name}` }), upload);
  }
  field.append(
    el('p', { class: 'hint', id: `${id}-hint`, text: hintText(param, value) }),
    el('p', { class: 'error', id: `${id}-error` }));
  return field;
}

function parameterInput(param, id, value) {
  switch (param.type) {
    case 'boolean': {
      const select = el('select', { id },
        el('option', { value: '', text: 'not set' }),
        el('option', { value: 'true', text: 'true' }),
        el('option', { value: 'false', text: 'false' }));
      select.value = '';
      if (value === true || value === 'true') select.value = 'true';
      if (value === false || value === 'false') select.value = 'false';
      return select;
    }
    case 'choice': {
      const options = (param.options || []).map((o) => el('option', { value: o, text: o }));
      const select = el('select', { id }, el('option', { value: '', text: 'not set' }), options);
      select.value = value === undefined || value === null ? '' : String(value);
      return select;
    }
    case 'number':
    case 'integer': {
      const input = el('input', { id, type: 'number', step: param.type === 'integer' ? '1' : 'any', inputmode: param.type === 'integer' ? 'numeric' : 'decimal' });
      if (param.min !== undefined && param.min !== null) input.min = String(param.min);
      if (param.max !== undefined && param.max !== null) input.max = String(param.max);
      input.value = value === undefined || value === null ? '' : String(value);
      return input;
    }
    case 'date':
      return el('input', { id, type: 'date', value: value ?? '' });
    case 'datetime':
      return el('input', { id, type: 'datetime-local', step: '1', value: toLocalInput(value) });
    default: {
      const input = el('input', { id, type: 'text', value: value ?? '', autocomplete: 'off' });
      if (param.minLength) input.minLength = param.minLength;
      if (param.maxLength) input.maxLength = param.maxLength;
      if (param.pattern && param.type === 'text') input.pattern = param.pattern;
      return input;
    }
  }
}

// toLocalInput turns an RFC 3339 value into the YYYY-MM-DDTHH:MM:SS of
// a datetime-local input, in UTC, which is what the form sends back.
function toLocalInput(value) {
  if (!value) return '';
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return '';
  return t.toISOString().slice(0, 19);
}

function hintText(param, value) {
  const parts = [param.type];
  if (param.type === 'datetime') parts[0] = 'date and time in UTC';
  if (param.type === 'file') parts[0] = 'path under the files directory';
  const hasMin = param.min !== undefined && param.min !== null;
  const hasMax = param.max !== undefined && param.max !== null;
  if (hasMin && hasMax) parts.push(`from ${param.min} to ${param.max}`);
  else if (hasMin) parts.push(`at least ${param.min}`);
  else if (hasMax) parts.push(`at most ${param.max}`);
  if (param.default !== undefined && param.default !== null) parts.push(`default ${formatValue(param.default)}`);
  if (value === undefined || value === null) parts.push(param.required ? 'no value set' : 'optional');
  return `${parts.join(', ')}${param.description ? `. ${param.description}` : ''}`;
}

// checkForm runs the browser's constraint checks and shows each
// problem next to its field, since the form has novalidate.
function checkForm(form) {
  let first = null;
  for (const input of form.querySelectorAll('[data-param-input]')) {
    if (input.checkValidity()) continue;
    showFieldError(form, input.dataset.paramInput, input.validationMessage);
    first ??= input;
  }
  first?.focus();
  return first === null;
}

// readForm returns the parameter values the form sets, typed for JSON,
// and the files to upload. Empty fields are left out, so the server
// uses the project's current value or the default.
function readForm(project, form) {
  const values = {};
  const files = [];
  for (const param of project.parameters || []) {
    const id = fieldID(project, param);
    const input = document.getElementById(id);
    const upload = document.getElementById(`${id}-upload`);
    if (upload?.files?.length > 0) {
      files.push({ name: param.name, file: upload.files[0] });
      continue;
    }
    const text = input.value.trim();
    if (text === '') continue;
    switch (param.type) {
      case 'number':
      case 'integer':
        values[param.name] = Number(text);
        break;
      case 'boolean':
        values[param.name] = text === 'true';
        break;
      case 'datetime':
        values[param.name] = `${text.length === 16 ? `${text}:00` : text}Z`;
        break;
      default:
        values[param.name] = input.value;
    }
  }
  return { values, files };
}

function clearErrors(form) {
  for (const p of form.querySelectorAll('.field .error')) p.textContent = '';
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

function showFieldError(form, name, message) {
  const field = [...form.querySelectorAll('.field')].find((f) => f.dataset.param === name);
  if (!field) return false;
  const error = field.querySelector('.error');
  error.textContent = error.textContent ? `${error.textContent} ${message}` : message;
  for (const input of field.querySelectorAll('input, select')) input.setAttribute('aria-invalid', 'true');
  return true;
}

// showFieldErrors puts each server validation error next to its field:
// "parameters.year" belongs to the field of year. Errors of other
// fields go to the form's status line.
function showFieldErrors(form, errors) {
  const other = [];
  let first = null;
  for (const { field, message } of errors) {
    const name = field.startsWith('parameters.') ? field.slice('parameters.'.length) : null;
    if (name !== null && showFieldError(form, name, message)) {
      first ??= [...form.querySelectorAll('[data-param-input]')].find((i) => i.dataset.paramInput === name);
    } else {
      other.push(`${field}: ${message}`);
    }
  }
  if (other.length > 0) form.querySelector('.form-status').append(` ${other.join(' ')}`);
  first?.focus();
}

// showRun shows a followed job: its state and blocks, then its result
// rows or error once it ended.
function showRun(panel, job) {
  const blocks = (job.blocks || []).map((b) => `${b.name} ${b.state}${b.durationMs !== null && b.durationMs !== undefined ? ` (${formatDuration(b.durationMs)})` : ''}`);
  const parts = [
    el('p', { class: 'run-state', dataset: { job: job.id, state: job.state } },
      `Job ${shortID(job.id)}: `, el('span', { class: `state state-${job.state}`, text: job.state })),
    blocks.length > 0 ? el('p', { class: 'meta', text: `Blocks: ${blocks.join(', ')}` }) : null,
  ];
  if (job.error) parts.push(el('p', { class: 'job-error', text: `${job.error.type}: ${job.error.message}` }));
  if (job.state === 'COMPLETED' && job.result) parts.push(resultTable(job));
  replaceChildren(panel, ...parts);
}

function resultCell(value) {
  const { text, full } = formatCell(value);
  return el('td', { text, title: text === full ? null : full });
}

function resultTable(job) {
  const { rows, total, truncated } = job.result;
  if (!rows || rows.length === 0) return el('p', { text: 'The result has no rows.' });
  const columns = [];
  for (const row of rows) {
    for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  }
  const caption = `Result: ${plural(total, 'row')}${truncated ? `, the first ${rows.length} shown` : ''}`;
  const table = el('table', { class: 'result' },
    el('caption', { text: caption }),
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', { scope: 'col', text: c })))),
    el('tbody', {}, rows.map((row) => el('tr', {}, columns.map((c) => resultCell(row[c]))))));
  // The region scrolls sideways inside itself, so a wide result never
  // widens the page; tabindex lets a keyboard user scroll it.
  return el('div', { class: 'table-wrap', role: 'region', tabindex: '0', 'aria-label': caption }, table);
}

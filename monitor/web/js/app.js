// The admin page: switches views, prompts for a token when the server
// requires one, and keeps the views current from the event stream.

import { getToken, setToken, onUnauthorized } from './api.js';
import { EventStream } from './events.js';
import { QueueView, StopDialog, loadQueue } from './queue.js';
import { SlotsForm } from './slots.js';
import { NodesView, loadNodes } from './nodes.js';
import { ChartsView } from './charts.js';
import { ProjectsView } from './projects.js';
import { shortID } from './dom.js';

// Delay of a queue refresh after an event, in ms: a job that starts
// sends several events at once, and one fetch covers them all.
const refreshDelayMs = 250;
// How often the queue is fetched without events: while jobs run, to
// advance their durations, and always when the event stream is down.
const runningRefreshMs = 5000;
const pollRefreshMs = 3000;
// How often the nodes are fetched besides with the queue, because their
// CPU and memory change without job events.
const nodesRefreshMs = 5000;
const chartsRefreshMs = 60000;

const liveTexts = {
  connecting: 'Connecting to live updates…',
  live: 'Live updates on',
  reconnecting: 'Live updates lost; reconnecting…',
  unauthorized: 'Live updates need a token',
};

const $ = (selector) => document.querySelector(selector);

class App {
  constructor() {
    this.views = [...document.querySelectorAll('main > section[data-view]')];
    this.notice = $('#notice');
    this.live = $('#live');
    this.liveState = 'connecting';
    this.queueView = new QueueView($('#view-queue'), { onStop: (job) => this.stopDialog.open(job) });
    this.stopDialog = new StopDialog($('#stop-dialog'), {
      onStopped: (job) => {
        this.say(`Stop requested for job ${shortID(job.id)}.`);
        this.refreshQueue();
      },
      onError: (message) => this.say(message, true),
    });
    this.slots = new SlotsForm($('#view-queue'), { onSaved: () => this.refreshQueue() });
    this.nodesView = new NodesView($('#view-queue'));
    this.charts = new ChartsView($('#view-resources'));
    this.projects = new ProjectsView($('#view-projects'));
    this.events = new EventStream({
      onEvent: (event) => this.eventArrived(event),
      onStatus: (state) => this.liveChanged(state),
    });
    this.refreshTimer = null;
    this.refreshing = null;
    this.refreshAgain = false;
    this.lastQueue = null;
    this.lastQueueAt = 0;
    this.nodesRefreshing = null;
    this.nodesAgain = false;
    this.nodesAt = 0;
    this.chartsAt = 0;
    this.projectsLoaded = false;
  }

  start() {
    this.setUpToken();
    window.addEventListener('hashchange', () => this.showView(true));
    $('#projects-reload').addEventListener('click', () => this.loadProjects());
    this.showView(false);
    this.events.start();
    setInterval(() => this.tick(), 1000);
  }

  currentView() {
    const name = location.hash.slice(1);
    return this.views.some((v) => v.dataset.view === name) ? name : 'queue';
  }

  // showView shows the section the URL's fragment names; focus moves to
  // its heading when the user navigated, so screen readers announce it.
  showView(moveFocus) {
    const name = this.currentView();
    for (const view of this.views) view.hidden = view.dataset.view !== name;
    for (const link of document.querySelectorAll('nav a[data-view]')) {
      if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (moveFocus) {
      this.say('');
      $(`#view-${name} h2`).focus();
    }
    this.loadView(name);
  }

  loadView(name) {
    if (name === 'queue') this.refreshQueue();
    if (name === 'resources') this.loadCharts();
    if (name === 'projects' && !this.projectsLoaded) this.loadProjects();
  }

  // tick runs every second and starts the fetches that are due.
  tick() {
    const view = this.currentView();
    const now = Date.now();
    if (view === 'queue' && !this.refreshing) {
      let every = pollRefreshMs;
      if (this.liveState === 'live') {
        every = this.lastQueue?.running?.length > 0 ? runningRefreshMs : 0;
      }
      // Without a valid token every fetch gets 401, until a new token
      // restarts everything.
      if (this.liveState === 'unauthorized') every = 0;
      if (every > 0 && now - this.lastQueueAt >= every) this.refreshQueue();
    }
    if (view === 'queue' && !this.nodesRefreshing && this.liveState !== 'unauthorized' &&
        now - this.nodesAt >= nodesRefreshMs) {
      this.refreshNodes();
    }
    if (view === 'resources' && now - this.chartsAt >= chartsRefreshMs) this.loadCharts();
  }

  // eventArrived refreshes a followed job, and the queue view at most
  // refreshDelayMs after the first of a burst of events.
  eventArrived(event) {
    this.projects.jobEvent(event);
    if (this.refreshTimer !== null || this.currentView() !== 'queue') return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refreshQueue();
    }, refreshDelayMs);
  }

  liveChanged(state) {
    this.liveState = state;
    this.live.textContent = liveTexts[state] || state;
    this.live.dataset.state = state;
    // Events may have been missed while the stream was down.
    if (state === 'live') this.refreshQueue();
  }

  // refreshQueue fetches the queue and the nodes. It runs at most one
  // fetch of the queue at a time, and a call during a fetch makes one
  // more fetch follow it.
  async refreshQueue() {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshNodes();
    this.refreshing = (async () => {
      try {
        const queue = await loadQueue();
        this.lastQueue = queue;
        this.queueView.render(queue);
        this.slots.update(queue);
        $('#queue-error').textContent = '';
      } catch (err) {
        $('#queue-error').textContent = `The queue could not be loaded: ${err.message}`;
      } finally {
        this.lastQueueAt = Date.now();
      }
    })();
    await this.refreshing;
    this.refreshing = null;
    if (this.refreshAgain) {
      this.refreshAgain = false;
      await this.refreshQueue();
    }
  }

  // refreshNodes fetches the nodes, at most one fetch at a time. A call
  // during a fetch makes one more fetch follow it.
  async refreshNodes() {
    if (this.nodesRefreshing) {
      this.nodesAgain = true;
      return this.nodesRefreshing;
    }
    this.nodesRefreshing = (async () => {
      try {
        this.nodesView.render(await loadNodes());
        $('#nodes-error').textContent = '';
      } catch (err) {
        $('#nodes-error').textContent = `The nodes could not be loaded: ${err.message}`;
      } finally {
        this.nodesAt = Date.now();
      }
    })();
    await this.nodesRefreshing;
    this.nodesRefreshing = null;
    if (this.nodesAgain) {
      this.nodesAgain = false;
      await this.refreshNodes();
    }
  }

  async loadCharts() {
    this.chartsAt = Date.now();
    await this.charts.load();
  }

  async loadProjects() {
    try {
      await this.projects.load();
      this.projectsLoaded = true;
    } catch (err) {
      $('#projects-status').textContent = `The projects could not be loaded: ${err.message}`;
    }
  }

  // setUpToken wires the token form. The page never needs a token to
  // load; the first 401 of an API call opens the form.
  setUpToken() {
    const panel = $('#auth');
    const toggle = $('#token-toggle');
    const input = $('#token-input');
    const showPanel = (open) => {
      panel.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
    };
    toggle.addEventListener('click', () => {
      showPanel(panel.hidden);
      if (!panel.hidden) input.focus();
    });
    onUnauthorized((err) => {
      const had = getToken() !== '';
      $('#auth-message').textContent = had
        ? `The server rejected the token (${err.message}). Enter another one.`
        : `The server needs an API token (${err.message}). Enter one to continue.`;
      if (panel.hidden) {
        showPanel(true);
        input.focus();
      }
    });
    $('#token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      input.value = '';
      showPanel(false);
      this.tokenChanged(getToken() ? 'Token saved for this tab.' : 'Token removed.');
    });
    $('#token-forget').addEventListener('click', () => {
      setToken('');
      input.value = '';
      this.tokenChanged('Token removed.');
    });
  }

  tokenChanged(message) {
    $('#auth-message').textContent = '';
    this.say(message);
    this.projectsLoaded = false;
    this.events.start();
    this.loadView(this.currentView());
  }

  say(message, isError = false) {
    this.notice.textContent = message;
    this.notice.classList.toggle('error', isError);
  }
}

new App().start();

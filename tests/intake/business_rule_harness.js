// Runs itsm/servicenow/business-rule.js, then itsm/servicenow/script-action.js for every
// event it queues (and every retry the script action schedules), with stand-ins for the
// Glide APIs they use, and prints what happened:
//   {"queued": [...], "requests": [{"method", "headers", "body", "timeout_ms"}],
//    "scheduled": [{"parm1", "parm2", "delay_seconds"}], "work_notes": [...], "log": [...],
//    and, for the last request: "sent", "method", "headers", "body"}.
// Input (stdin, JSON): {"operation", "record", "variables", "display", "changed",
//   "secret", "now_ms", "user", "skip_user", "answers"}; each answer is
//   {"status", "headers", "body"} or {"throw": "message"}, used in turn (the last one
//   repeats; default: one 202).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const vm = require('vm');

const scenario = JSON.parse(fs.readFileSync(0, 'utf8'));
const rule = fs.readFileSync(process.argv[2], 'utf8');
const action = fs.readFileSync(process.argv[3], 'utf8');
const output = {
    sent: false, headers: {}, body: null, queued: [], requests: [], scheduled: [],
    work_notes: [], log: [],
};
const answers = (scenario.answers || [{status: 202}]).slice();
let clockMs = scenario.now_ms;

function element(value, display, extra) {
    const el = {
        toString: () => (value === null ? '' : String(value)),
        getDisplayValue: () => (display === undefined ? String(value) : display),
        changes: () => false,
        nil: () => value === null || value === '',
    };
    return Object.assign(el, extra || {});
}

const record = scenario.record;
const current = {
    operation: () => scenario.operation,
    number: element(record.number),
    sys_id: element(record.sys_id),
    state: element(record.state, undefined, {changes: () => (scenario.changed || []).includes('state')}),
    stage: element(record.stage),
    approval: element(record.approval, undefined, {changes: () => (scenario.changed || []).includes('approval')}),
    short_description: element(record.short_description),
    request: element(record.request.sys_id, undefined, {number: element(record.request.number)}),
    cat_item: element(record.cat_item.sys_id, undefined, {name: element(record.cat_item.name)}),
    opened_by: element(record.opened_by.sys_id, record.opened_by.name, {
        user_name: element(record.opened_by.user_name), email: element(record.opened_by.email)}),
    requested_for: element(record.requested_for.sys_id, record.requested_for.name, {
        user_name: element(record.requested_for.user_name), email: element(record.requested_for.email)}),
    variables: {},
    update: () => output.work_notes.push(String(current.work_notes)),
};
for (const [name, value] of Object.entries(scenario.variables)) {
    current.variables[name] = element(value, (scenario.display || {})[name]);
}

const properties = {
    'x_selfservice.intake_url': 'https://example.invalid/webhooks/servicenow',
    'x_selfservice.integration_user': scenario.skip_user || '',
    'instance_name': 'acme',
};
// The event queue: what the event processor would hand to the script action, in order.
const pending = [];

function GlideDateTime() {
    let ms = clockMs;
    this.getNumericValue = () => ms;
    this.addSeconds = (s) => { ms += s * 1000; };
}

function RESTMessageV2() {
    const sent = {headers: {}, body: null, method: null, timeout_ms: null};
    this.setEndpoint = () => {};
    this.setHttpMethod = (m) => { sent.method = m; };
    this.setHttpTimeout = (ms) => { sent.timeout_ms = ms; };
    this.setRequestHeader = (k, v) => { sent.headers[k] = v; };
    this.setRequestBody = (b) => { sent.body = b; };
    this.executeAsync = () => { throw new Error('the script action sends synchronously'); };
    this.execute = () => {
        output.requests.push(sent);
        Object.assign(output, {sent: true, method: sent.method, headers: sent.headers, body: sent.body});
        const answer = answers.length > 1 ? answers.shift() : answers[0];
        if (answer.throw) {
            throw new Error(answer.throw);
        }
        const headers = answer.headers || {};
        return {
            getStatusCode: () => answer.status,
            getHeader: (name) => (name in headers ? headers[name] : null),
            getBody: () => (answer.body === undefined ? '' : JSON.stringify(answer.body)),
            getErrorMessage: () => (answer.status ? '' : 'Connection refused'),
        };
    };
}

const gs = {
    getProperty: (name, fallback) => (name in properties ? properties[name] : fallback),
    getUserName: () => scenario.user || 'ana.ruiz',
    generateGUID: () => 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    info: (m) => output.log.push(m),
    warn: (m) => output.log.push('WARN ' + m),
    error: (m) => output.log.push('ERROR ' + m),
    eventQueue: (name, gr, parm1, parm2) => {
        output.queued.push({name, parm1, parm2});
        pending.push({name, parm1, parm2, at: clockMs});
    },
    eventQueueScheduled: (name, gr, parm1, parm2, when) => {
        const at = when.getNumericValue();
        output.scheduled.push({parm1, parm2, delay_seconds: (at - clockMs) / 1000});
        pending.push({name, parm1, parm2, at});
    },
};
const glide = {
    JSON, Math, String, parseInt, gs, GlideDateTime,
    GlideRecord: function () {
        this.get = (field, name) => name === 'x_selfservice.webhook_secret' && scenario.secret !== null;
        this.getElement = () => ({getDecryptedValue: () => scenario.secret});
    },
    GlideStringUtil: {base64Encode: (s) => Buffer.from(s, 'utf8').toString('base64')},
    GlideCertificateEncryption: function () {
        this.generateMac = (key, algorithm, data) => {
            if (algorithm !== 'HmacSHA256') throw new Error('unexpected algorithm ' + algorithm);
            return crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(data, 'utf8').digest('base64');
        };
    },
    sn_ws: {RESTMessageV2},
};

vm.runInNewContext(rule, {...glide, current, previous: null}, {filename: 'business-rule.js'});
for (let processed = 0; pending.length > 0 && processed < 50; processed += 1) {
    pending.sort((a, b) => a.at - b.at);
    const next = pending.shift();
    if (next.name !== 'x_selfservice.deliver') {
        throw new Error('unexpected event ' + next.name);
    }
    clockMs = Math.max(clockMs, next.at);  // the event processor runs it when it is due
    vm.runInNewContext(action, {...glide, current, event: next}, {filename: 'script-action.js'});
}
process.stdout.write(JSON.stringify(output));

// Runs itsm/servicenow/business-rule.js with stand-ins for the Glide APIs it uses and
// prints what it would send: {"sent": bool, "headers": {...}, "body": "..."}.
// Input (stdin, JSON): {"operation", "record", "variables", "display", "changed",
//   "secret", "now_ms", "user", "skip_user"}.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const vm = require('vm');

const scenario = JSON.parse(fs.readFileSync(0, 'utf8'));
const script = fs.readFileSync(process.argv[2], 'utf8');
const output = {sent: false, headers: {}, body: null, log: []};

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
};
for (const [name, value] of Object.entries(scenario.variables)) {
    current.variables[name] = element(value, (scenario.display || {})[name]);
}

const properties = {
    'x_selfservice.intake_url': 'https://example.invalid/webhooks/servicenow',
    'x_selfservice.integration_user': scenario.skip_user || '',
    'instance_name': 'acme',
};
const context = {
    current,
    previous: null,
    JSON,
    Math,
    String,
    gs: {
        getProperty: (name, fallback) => (name in properties ? properties[name] : fallback),
        getUserName: () => scenario.user || 'ana.ruiz',
        generateGUID: () => 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
        info: (m) => output.log.push(m),
        error: (m) => output.log.push('ERROR ' + m),
    },
    GlideRecord: function () {
        this.get = (field, name) => name === 'x_selfservice.webhook_secret' && scenario.secret !== null;
        this.getElement = () => ({getDecryptedValue: () => scenario.secret});
    },
    GlideDateTime: function () { this.getNumericValue = () => scenario.now_ms; },
    GlideStringUtil: {base64Encode: (s) => Buffer.from(s, 'utf8').toString('base64')},
    GlideCertificateEncryption: function () {
        this.generateMac = (key, algorithm, data) => {
            if (algorithm !== 'HmacSHA256') throw new Error('unexpected algorithm ' + algorithm);
            return crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(data, 'utf8').digest('base64');
        };
    },
    sn_ws: {
        RESTMessageV2: function () {
            this.setEndpoint = () => {};
            this.setHttpMethod = (m) => { output.method = m; };
            this.setRequestHeader = (k, v) => { output.headers[k] = v; };
            this.setRequestBody = (b) => { output.body = b; };
            this.executeAsync = () => { output.sent = true; };
        },
    },
};
vm.runInNewContext(script, context, {filename: 'business-rule.js'});
process.stdout.write(JSON.stringify(output));

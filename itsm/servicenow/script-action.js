/**
 * selfservice — ServiceNow script action: signs and sends a request item to intake, and
 * retries until intake has it.
 *
 * System Policy > Events > Script Actions: Name "selfservice deliver", Event name
 * x_selfservice.deliver, Active: yes. Paste this whole file into the Script field.
 * business-rule.js queues the event: parm1 is what happened ("sc_req_item.inserted",
 * ".updated" or ".cancelled"), parm2 is "<attempt>|<webhook id>".
 *
 * How it signs (Standard Webhooks): webhook-id, webhook-timestamp and
 *   webhook-signature = "v1," + base64(HMAC-SHA256(secret, id + "." + timestamp + "." + body)).
 * The secret is the "current" value of the ServiceNowHmacSecret secret of the stack,
 * stored in ServiceNow as the password2 system property named below.
 *
 * What each answer means:
 *   - 2xx: delivered (a repeat gets intake's original reply: nothing is provisioned twice).
 *   - 408, 429, 5xx or no answer: tried again by queueing the event for later
 *     (gs.eventQueueScheduled, so no worker waits) — 30 s doubling up to 30 min, or
 *     intake's Retry-After when that is longer — with the same webhook id and a fresh
 *     timestamp and signature. Up to 8 attempts, about an hour.
 *   - 400 or 422 with "status": "rejected": intake refused the request and writes its
 *     reasons on this item itself.
 *   - any other answer, or the last attempt failing: a work note on the item says the
 *     request was not delivered, so nobody waits for a provisioning that is not coming.
 *
 * A retry that comes due after the item was cancelled sends nothing but the
 * cancellation: a late "inserted" must not provision what was since cancelled.
 */
(function deliver(current, event) {
    var EVENT = 'x_selfservice.deliver';
    var PROPERTY_ENDPOINT = 'x_selfservice.intake_url';      // https://<api>/webhooks/servicenow
    var PROPERTY_SECRET = 'x_selfservice.webhook_secret';   // type password2
    var MAX_ATTEMPTS = 8;
    var FIRST_WAIT_SECONDS = 30;
    var LONGEST_WAIT_SECONDS = 1800;
    var TIMEOUT_MS = 30000;
    var CANCELLED_STATES = ['4', '7'];                      // as in business-rule.js

    function user(ref) {
        if (ref.nil()) {
            return null;
        }
        return {
            sys_id: String(ref),
            user_name: String(ref.user_name),
            name: String(ref.getDisplayValue()),
            email: String(ref.email)
        };
    }

    function readSecret() {
        var property = new GlideRecord('sys_properties');
        if (!property.get('name', PROPERTY_SECRET)) {
            return null;
        }
        return property.getElement('value').getDecryptedValue();
    }

    function buildPayload(name) {
        var variables = {};
        var displayValues = {};
        for (var key in current.variables) {
            var variable = current.variables[key];
            var value = String(variable);
            var display = String(variable.getDisplayValue());
            variables[key] = value;
            if (display && display != value) {
                displayValues[key] = display;  // reference and choice variables
            }
        }
        return {
            event: name,
            instance: 'https://' + gs.getProperty('instance_name') + '.service-now.com',
            number: String(current.number),
            sys_id: String(current.sys_id),
            request: {number: String(current.request.number), sys_id: String(current.request)},
            cat_item: {sys_id: String(current.cat_item), name: String(current.cat_item.name)},
            opened_by: user(current.opened_by),
            requested_for: user(current.requested_for),
            state: String(current.state),
            stage: String(current.stage),
            approval: String(current.approval),
            short_description: String(current.short_description),
            variables: variables,
            display_values: displayValues
        };
    }

    function send(body, webhookId, secret, endpoint) {
        var timestamp = String(Math.floor(new GlideDateTime().getNumericValue() / 1000));
        var signed = webhookId + '.' + timestamp + '.' + body;
        var mac = new GlideCertificateEncryption().generateMac(
            GlideStringUtil.base64Encode(secret), 'HmacSHA256', signed);
        var request = new sn_ws.RESTMessageV2();
        request.setEndpoint(endpoint);
        request.setHttpMethod('post');
        request.setHttpTimeout(TIMEOUT_MS);
        request.setRequestHeader('Content-Type', 'application/json');
        request.setRequestHeader('Accept', 'application/json');
        request.setRequestHeader('webhook-id', webhookId);
        request.setRequestHeader('webhook-timestamp', timestamp);
        request.setRequestHeader('webhook-signature', 'v1,' + mac);
        request.setRequestBody(body);
        try {
            var response = request.execute();
            var status = response.getStatusCode();
            return {
                status: status,
                retryAfter: response.getHeader('Retry-After'),
                rejected: isRejection(response.getBody()),
                detail: status ? 'HTTP ' + status : String(response.getErrorMessage())
            };
        } catch (e) {
            return {status: 0, retryAfter: null, rejected: false, detail: String(e)};
        }
    }

    function isRejection(body) {
        // Intake's rejections (bad variables, policy) carry the ticket and are written on
        // it; a 400 without them (a body intake could not read) is not.
        try {
            return JSON.parse(body).status === 'rejected';
        } catch (e) {
            return false;
        }
    }

    function retryable(status) {
        return status === 0 || status == 408 || status == 429 || status >= 500;
    }

    function waitSeconds(attempt, retryAfter) {
        // Intake asks for 5 s on every 503: a floor, not the schedule, or an outage of a
        // minute would spend all 8 attempts.
        var asked = parseInt(retryAfter, 10) || 0;
        var backoff = FIRST_WAIT_SECONDS * Math.pow(2, attempt - 1);
        return Math.min(LONGEST_WAIT_SECONDS, Math.max(asked, backoff));
    }

    function tellTheItem(why) {
        current.work_notes = 'selfservice: this request was not delivered to the provisioning '
            + 'platform (' + why + '). Nothing has been provisioned for it. Ask the platform '
            + 'team to look at the ServiceNow system log for ' + current.number + '.';
        current.update();
    }

    var name = String(event.parm1);
    var parts = String(event.parm2).split('|');
    var attempt = parseInt(parts[0], 10) || 1;
    var webhookId = parts[1];
    if (name != 'sc_req_item.cancelled' && CANCELLED_STATES.indexOf(String(current.state)) >= 0) {
        gs.info('selfservice: dropped ' + name + ' for ' + current.number + ' as ' + webhookId
            + ': the item has been cancelled since');
        return;
    }
    var endpoint = gs.getProperty(PROPERTY_ENDPOINT);
    var secret = readSecret();
    if (!endpoint || !secret) {
        gs.error('selfservice: set ' + PROPERTY_ENDPOINT + ' and ' + PROPERTY_SECRET
            + '; ' + current.number + ' was not sent');
        tellTheItem('the integration is not configured');
        return;
    }
    var answer = send(JSON.stringify(buildPayload(name)), webhookId, secret, endpoint);
    var what = name + ' for ' + current.number + ' as ' + webhookId + ' (attempt ' + attempt + ')';
    if (answer.status >= 200 && answer.status < 300) {
        gs.info('selfservice: delivered ' + what + ': ' + answer.detail);
        return;
    }
    if ((answer.status == 400 || answer.status == 422) && answer.rejected) {
        gs.warn('selfservice: intake refused ' + what + ': ' + answer.detail
            + '; its reasons are written on the item');
        return;
    }
    if (retryable(answer.status) && attempt < MAX_ATTEMPTS) {
        var wait = waitSeconds(attempt, answer.retryAfter);
        var when = new GlideDateTime();
        when.addSeconds(wait);
        gs.eventQueueScheduled(EVENT, current, name, (attempt + 1) + '|' + webhookId, when);
        gs.warn('selfservice: not delivered ' + what + ': ' + answer.detail
            + '; trying again in ' + wait + ' s');
        return;
    }
    gs.error('selfservice: gave up on ' + what + ': ' + answer.detail);
    tellTheItem(retryable(answer.status)
        ? 'no success after ' + attempt + ' attempts, last: ' + answer.detail
        : 'intake answered ' + answer.detail);
})(current, event);

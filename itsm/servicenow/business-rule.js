/**
 * selfservice — ServiceNow business rule that sends request items to intake.
 *
 * Table: Requested Item [sc_req_item]   When: after   Insert: yes   Update: yes
 * Advanced: yes. Paste this whole file into the Script field.
 * Condition (recommended): the catalog item is one intake maps, e.g.
 *   current.cat_item.name.startsWith('AWS ')
 *
 * What it sends (the body intake parses; see itsm/servicenow/README.md):
 *   - on insert:                               event "sc_req_item.inserted"
 *   - on update when the approval changed:     event "sc_req_item.updated"
 *   - on update into a cancelled state:        event "sc_req_item.cancelled"
 *   - nothing for other updates (work notes, the platform's own state changes).
 *
 * How it signs (Standard Webhooks): webhook-id, webhook-timestamp and
 *   webhook-signature = "v1," + base64(HMAC-SHA256(secret, id + "." + timestamp + "." + body)).
 * The secret is the "current" value of the ServiceNowHmacSecret secret of the stack,
 * stored in ServiceNow as the password2 system property named below.
 *
 * The request goes out with executeAsync(), so the user's transaction never waits.
 */
(function executeRule(current, previous) {
    var PROPERTY_ENDPOINT = 'x_selfservice.intake_url';      // https://<api>/webhooks/servicenow
    var PROPERTY_SECRET = 'x_selfservice.webhook_secret';   // type password2
    var PROPERTY_SKIP_USER = 'x_selfservice.integration_user'; // the notifier's user name
    var CANCELLED_STATES = ['4', '7'];                      // Closed Incomplete, Closed Skipped

    function eventName() {
        if (current.operation() == 'insert') {
            return 'sc_req_item.inserted';
        }
        if (current.state.changes() && CANCELLED_STATES.indexOf(String(current.state)) >= 0) {
            return 'sc_req_item.cancelled';
        }
        if (current.approval.changes()) {
            return 'sc_req_item.updated';
        }
        return null;
    }

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

    var skipUser = gs.getProperty(PROPERTY_SKIP_USER, '');
    if (skipUser && gs.getUserName() == skipUser) {
        return;  // our own write-back must not come back as a request
    }
    var name = eventName();
    if (!name) {
        return;
    }
    var endpoint = gs.getProperty(PROPERTY_ENDPOINT);
    var secret = readSecret();
    if (!endpoint || !secret) {
        gs.error('selfservice: set ' + PROPERTY_ENDPOINT + ' and ' + PROPERTY_SECRET
            + '; ' + current.number + ' was not sent');
        return;
    }
    var body = JSON.stringify(buildPayload(name));
    var webhookId = 'msg_' + gs.generateGUID();
    var timestamp = String(Math.floor(new GlideDateTime().getNumericValue() / 1000));
    var signed = webhookId + '.' + timestamp + '.' + body;
    var mac = new GlideCertificateEncryption().generateMac(
        GlideStringUtil.base64Encode(secret), 'HmacSHA256', signed);

    var request = new sn_ws.RESTMessageV2();
    request.setEndpoint(endpoint);
    request.setHttpMethod('post');
    request.setRequestHeader('Content-Type', 'application/json');
    request.setRequestHeader('Accept', 'application/json');
    request.setRequestHeader('webhook-id', webhookId);
    request.setRequestHeader('webhook-timestamp', timestamp);
    request.setRequestHeader('webhook-signature', 'v1,' + mac);
    request.setRequestBody(body);
    request.executeAsync();
    gs.info('selfservice: sent ' + name + ' for ' + current.number + ' as ' + webhookId);
})(current, previous);

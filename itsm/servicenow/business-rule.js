/**
 * selfservice — ServiceNow business rule: decides which request item changes go to intake.
 *
 * Table: Requested Item [sc_req_item]   When: after   Insert: yes   Update: yes
 * Advanced: yes. Paste this whole file into the Script field.
 * Condition (recommended): the catalog item is one intake maps, e.g.
 *   String(current.cat_item.name).indexOf('AWS ') === 0
 * (a GlideElement is not a string, and ES5 has no startsWith: take its value first).
 *
 * What it queues (the body intake parses is built by script-action.js; see README.md):
 *   - on insert:                               "sc_req_item.inserted"
 *   - on update when the approval changed:     "sc_req_item.updated"
 *   - on update into a cancelled state:        "sc_req_item.cancelled"
 *   - nothing for other updates (work notes, the platform's own state changes).
 *
 * It sends nothing itself. It queues the event x_selfservice.deliver (register it in
 * System Policy > Events > Registry) with parm1 = what happened and parm2 =
 * "1|<webhook id>"; the script action in script-action.js signs and sends it in the
 * background and retries what intake could not take yet (429, 5xx, no answer). So the
 * user's transaction never waits on the network, and a delivery is never dropped
 * because intake was briefly unavailable.
 */
(function executeRule(current, previous) {
    var EVENT = 'x_selfservice.deliver';
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

    var skipUser = gs.getProperty(PROPERTY_SKIP_USER, '');
    if (skipUser && gs.getUserName() == skipUser) {
        return;  // our own write-back must not come back as a request
    }
    var name = eventName();
    if (!name) {
        return;
    }
    // One webhook id for every attempt: intake and both sides' logs see one delivery.
    var webhookId = 'msg_' + gs.generateGUID();
    gs.eventQueue(EVENT, current, name, '1|' + webhookId);
    gs.info('selfservice: queued ' + name + ' for ' + current.number + ' as ' + webhookId);
})(current, previous);

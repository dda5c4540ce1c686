// The result of a check, read from the daemon's reply (DESIGN.md §3.1).

import { TrineProtocolError } from './errors.js';

const KINDS = new Set(['allow', 'deny', 'consent_required']);

function isObject(v) {
    return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * One decision. The fields are read once from the result object, which stays
 * available, untouched, as `raw`. A Decision is frozen.
 */
export class Decision {
    /**
     * Builds a Decision from a check result. Throws TrineProtocolError when
     * the result lacks a known `decision` or a string `reason`, so a garbled
     * reply can never pass for an allow.
     */
    constructor(result) {
        if (!isObject(result)) {
            throw new TrineProtocolError('check result is not an object');
        }
        if (!KINDS.has(result.decision)) {
            throw new TrineProtocolError(
                `check result has an unknown decision: ${JSON.stringify(result.decision)}`);
        }
        if (typeof result.reason !== 'string') {
            throw new TrineProtocolError('check result has no reason');
        }
        /** "allow", "deny" or "consent_required". */
        this.decision = result.decision;
        /** The primary reason code, e.g. "scope_missing". */
        this.reason = result.reason;
        /** True only for an allow. */
        this.allowed = result.decision === 'allow';
        /** For scope_missing: the scopes a step-up should ask for. */
        this.requiredScopes = Array.isArray(result.required_scopes)
            ? [...result.required_scopes] : [];
        /** For scope_missing: a ready WWW-Authenticate value, or null. */
        this.wwwAuthenticate = typeof result.www_authenticate === 'string'
            ? result.www_authenticate : null;
        /** For consent_required: {mode, prompt}; null otherwise. */
        this.consent = isObject(result.consent)
            ? Object.freeze({
                mode: result.consent.mode ?? null,
                prompt: result.consent.prompt ?? null,
            })
            : null;
        /** The audit row's id (null when no row was written). */
        this.auditId = Number.isInteger(result.audit_id) ? result.audit_id : null;
        /** The revision of the policy that decided. */
        this.policyRevision = typeof result.policy_revision === 'string'
            ? result.policy_revision : null;
        /** Every reason, with code, set, action, resource, rule, detail. */
        this.reasons = Array.isArray(result.reasons) ? result.reasons : [];
        /** The rules that matched, per set. */
        this.matched = Array.isArray(result.matched) ? result.matched : [];
        /** The result object as the daemon sent it. */
        this.raw = result;
        Object.freeze(this);
    }

    /**
     * Returns one line that says why: the primary reason and the detail of
     * the first reason that has one, e.g. "user_denied: no role of user bob
     * allows it (notes.read on notes:alice/diary)".
     */
    explain() {
        const first = this.reasons.find(r => isObject(r) && r.code === this.reason)
            ?? this.reasons.find(isObject);
        let text = this.reason;
        if (first && typeof first.detail === 'string' && first.detail !== '') {
            text += `: ${first.detail}`;
        }
        if (first && typeof first.action === 'string' && typeof first.resource === 'string') {
            text += ` (${first.action} on ${first.resource})`;
        }
        return text;
    }
}

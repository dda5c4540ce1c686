"""The answer to a ``check``: :class:`Decision`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .errors import ProtocolError

DECISIONS = ("allow", "deny", "consent_required")


@dataclass(frozen=True)
class Decision:
    """One decision of trined, as the ``check`` method returned it.

    Attributes:
        decision: ``"allow"``, ``"deny"`` or ``"consent_required"``.
        reason: the primary reason code (``"allow"``, ``"scope_missing"``,
            ``"audit_unavailable"``, ...; DESIGN.md section 3.1).
        allowed: True exactly when ``decision`` is ``"allow"``. Anything
            else, including a decision this client does not know, is not
            allowed: act on this, never on ``reason`` alone.
        required_scopes: for ``scope_missing``, the scopes to step up to
            (possibly empty); otherwise an empty list.
        www_authenticate: for ``scope_missing`` when stepping up can help,
            the ready ``WWW-Authenticate`` header value for an HTTP 403;
            otherwise None.
        consent_mode: for ``consent_required``, the tool's consent mode
            (``"always"``, ``"session"`` or ``"once"``); otherwise None.
        consent_prompt: for ``consent_required``, the prompt to show the
            user, filled in; otherwise None.
        audit_id: the id of the decision's audit row (None only for
            ``audit_unavailable``, which has no row). Pass it to
            ``grant_consent`` once the user agreed.
        policy_revision: the revision of the policy that decided.
        reasons: every reason, as the daemon sent them (dicts with
            ``code`` and, as they apply, ``set``, ``action``, ``resource``,
            ``agent``, ``argument``, ``rule`` and ``detail``).
        matched: the rules that matched (dicts with ``set`` and ``rule``).
        raw: the whole ``result`` object.
    """

    decision: str
    reason: str
    allowed: bool
    required_scopes: List[str] = field(default_factory=list, hash=False)
    www_authenticate: Optional[str] = None
    consent_mode: Optional[str] = None
    consent_prompt: Optional[str] = None
    audit_id: Optional[int] = None
    policy_revision: Optional[str] = None
    reasons: List[Dict[str, Any]] = field(default_factory=list, hash=False)
    matched: List[Dict[str, Any]] = field(default_factory=list, hash=False)
    raw: Dict[str, Any] = field(default_factory=dict, hash=False,
                                repr=False)

    @classmethod
    def from_result(cls, result: Any) -> "Decision":
        """Returns the Decision for a ``check`` result object.

        Raises ProtocolError when the object does not have the shape of
        DESIGN.md section 3.1 (an unknown decision, a field of the wrong
        type): a reply that cannot be understood is never taken for an
        answer.
        """
        if not isinstance(result, dict):
            raise ProtocolError("check: the result is not an object")
        decision = result.get("decision")
        if decision not in DECISIONS:
            raise ProtocolError("check: unknown decision %r" % (decision,))
        reason = _field(result, "reason", str, required=True)
        scopes = result.get("required_scopes", [])
        if not isinstance(scopes, list) or not all(
                isinstance(s, str) for s in scopes):
            raise ProtocolError("check: required_scopes is not a list of "
                                "strings")
        consent = result.get("consent")
        mode: Optional[str] = None
        prompt: Optional[str] = None
        if consent is not None:
            if not isinstance(consent, dict):
                raise ProtocolError("check: consent is not an object")
            mode = _field(consent, "mode", str)
            prompt = _field(consent, "prompt", str)
        audit_id = result.get("audit_id")
        if audit_id is not None and not _is_int(audit_id):
            raise ProtocolError("check: audit_id is not an integer")
        reasons = _field(result, "reasons", list) or []
        matched = _field(result, "matched", list) or []
        return cls(
            decision=decision,
            reason=reason,
            allowed=decision == "allow",
            required_scopes=list(scopes),
            www_authenticate=_field(result, "www_authenticate", str),
            consent_mode=mode,
            consent_prompt=prompt,
            audit_id=audit_id,
            policy_revision=_field(result, "policy_revision", str),
            reasons=reasons,
            matched=matched,
            raw=result,
        )


def _is_int(value: Any) -> bool:
    """True for a JSON integer (a Python int that is not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _field(obj: Dict[str, Any], name: str, kind: type,
           required: bool = False) -> Any:
    """Returns obj[name] when it has the given type, None when it is
    absent or null (and not required); raises ProtocolError otherwise."""
    value = obj.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind):
        raise ProtocolError("check: %s is not a %s" % (name, kind.__name__))
    return value

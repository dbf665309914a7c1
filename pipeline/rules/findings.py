"""Findings that come from outside the analyzer: card data redacted from the transcript, and the
contact-policy checks over the consumer's call history. Pure; the score stage gathers the inputs."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.analysis import Evidence, Finding
from schemas.transcript import Redaction, Utterance

_DESCRIPTIONS = {
    "card_number": "A payment card number was spoken on the call (redacted from the transcript)",
    "security_code": "A card security code was spoken on the call (redacted from the transcript)",
}


def redaction_findings(
    redactions: Sequence[Redaction], utterances: Sequence[Utterance]
) -> list[Finding]:
    """One critical finding per kind of card data, citing the utterances it was spoken in.

    The quote is the redacted utterance text: the evidence never brings the digits back.
    """
    findings: dict[str, Finding] = {}
    for redaction in redactions:
        finding = findings.setdefault(
            redaction.kind,
            Finding(
                code=redaction.kind,
                description=_DESCRIPTIONS.get(redaction.kind, f"Sensitive data ({redaction.kind})"),
                severity="critical",
            ),
        )
        spoken_in = covering_utterance(redaction, utterances)
        if spoken_in is not None and all(e.utterance_id != spoken_in.id for e in finding.evidence):
            finding.evidence.append(
                Evidence(
                    utterance_id=spoken_in.id,
                    quote=spoken_in.text[:160],
                    start_ms=spoken_in.start_ms,
                    end_ms=spoken_in.end_ms,
                )
            )
    return list(findings.values())


def covering_utterance(redaction: Redaction, utterances: Sequence[Utterance]) -> Utterance | None:
    """The utterance a redaction was spoken in: by id once diarize assigned one, else the one
    overlapping it most in time."""
    if redaction.utterance_id is not None:
        return next((u for u in utterances if u.id == redaction.utterance_id), None)
    best, overlap = None, 0
    for utterance in utterances:
        shared = min(utterance.end_ms, redaction.end_ms) - max(
            utterance.start_ms, redaction.start_ms
        )
        if shared > overlap:
            best, overlap = utterance, shared
    return best

"""Role attribution: which speaker is the agent and which the customer, with a confidence and a reason.

A cascade of evidence, strongest first: the channel map (stereo, exact) → a role word in the speaker
label ("Agent", "caller") → what each anonymous speaker says (weighted cues below) → who spoke first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.common import Role

FIRST_SPEAKER_WEIGHT = 0.5  # agents usually open the call, but it is the weakest cue we have
MIN_CONFIDENCE, MAX_CONFIDENCE = 0.5, 0.95
MARGIN_SCALE = 4.0  # evidence margin at which confidence is ~2/3 of the way to MAX_CONFIDENCE
COMPANY_WEIGHT = 2.0
COMPLEMENT_CONFIDENCE = 0.9  # the other speaker of a call whose agent (or customer) is labelled

_LABEL_WORDS = {
    Role.AGENT: {"agent", "rep", "representative", "advisor", "adviser", "operator", "csr"},
    Role.CUSTOMER: {"customer", "caller", "client", "consumer", "member", "patient"},
}


@dataclass(frozen=True)
class Cue:
    name: str
    role: Role
    weight: float
    pattern: re.Pattern[str]


def _cue(name: str, role: Role, weight: float, pattern: str) -> Cue:
    return Cue(name, role, weight, re.compile(pattern))


A, C = Role.AGENT, Role.CUSTOMER
# What a speaker says, matched on lower-cased text with straight apostrophes; each cue counts once
# per speaker, so a chatty speaker does not win by repetition.
CUES: tuple[Cue, ...] = (
    _cue("greeting", A, 3.0, r"\bthank(s| you) for (calling|contacting|choosing|holding)\b"),
    _cue("offer of help", A, 3.0, r"\bhow (can|may|could) i (help|assist)\b"),
    _cue("offer of help", A, 3.0, r"\bwhat can i (do|help) (for|with)\b"),
    _cue("introduction", A, 2.0, r"\b(i'll|i will) be (helping|assisting)\b"),
    _cue("introduction", A, 1.0, r"\b(my name is|this is) [a-z]+\b"),
    _cue(
        "verification",
        A,
        2.5,
        r"\b(confirm|verify)\b.{0,40}\b(date of birth|account number|last four|post ?code|zip code|address|phone number|email|security)",
    ),
    _cue("verification", A, 1.5, r"\b(last four digits|date of birth)\b\?"),
    _cue("hold", A, 2.5, r"\b(put|place) you on hold\b|\bbear with me\b"),
    _cue("anything else", A, 2.5, r"\bis there anything else (i|we) can\b"),
    _cue("apology", A, 1.0, r"\b(sorry (about|for) (that|the)|apologi[sz]e for)\b"),
    _cue(
        "account action",
        A,
        1.5,
        r"\bi (can see|have (refunded|cancelled|canceled|processed|updated|credited))\b",
    ),
    _cue("reason for call", C, 3.0, r"\bi('m| am) calling (about|because|to|regarding|for)\b"),
    _cue(
        "request",
        C,
        2.5,
        r"\bi( want| need| would like|'d like) to (cancel|close|dispute|report|change|return|complain)\b",
    ),
    _cue(
        "own account",
        C,
        1.5,
        r"\bmy (account|bill|card|order|payment|subscription|statement|policy)\b",
    ),
    _cue(
        "complaint",
        C,
        2.0,
        r"\b(i was|i've been|i have been) (charged|billed|waiting|trying|on hold)\b",
    ),
    _cue("when refund", C, 2.0, r"\bwhen will i (get|receive|see)\b"),
    _cue("asks for help", C, 1.5, r"\bcan you help me\b"),
)


@dataclass(frozen=True)
class Attribution:
    """One speaker's role, how sure we are (0 … 1) and the evidence that decided it."""

    role: Role
    confidence: float
    cue: str


UNKNOWN = Attribution(Role.UNKNOWN, 0.0, "no evidence")


def by_channel(channel: int | None, channel_map: dict[int, Role]) -> Attribution:
    """Stereo: the tenant's or job's channel map is exact."""
    role = channel_map.get(channel, Role.UNKNOWN) if channel is not None else Role.UNKNOWN
    if role is Role.UNKNOWN:
        return Attribution(Role.UNKNOWN, 0.0, f"channel {channel} is not in the channel map")
    return Attribution(role, 1.0, f"channel {channel} is mapped to the {role.value}")


def by_label(label: str) -> Attribution | None:
    """A role word as the speaker label ("Agent", "Caller"); None for a name or "A"/"B"."""
    word = label.strip().lower()
    for role, words in _LABEL_WORDS.items():
        if word in words:
            return Attribution(role, 1.0, f"speaker label {label.strip()!r}")
    return None


def attribute_speakers(
    turns: Sequence[tuple[str, str]], *, company_names: Iterable[str] = ()
) -> dict[str, Attribution]:
    """Roles for every speaker of `turns` [(speaker, text)] in time order; pure and deterministic."""
    order = list(dict.fromkeys(speaker for speaker, _ in turns))
    labelled = {s: a for s in order if (a := by_label(s)) is not None}
    anonymous = [s for s in order if s not in labelled]
    result = dict(labelled)
    if not anonymous:
        return result
    known = {a.role for a in labelled.values()}
    if len(known) == 1:
        other = Role.CUSTOMER if Role.AGENT in known else Role.AGENT
        cue = f"the other speaker is labelled {next(iter(known)).value}"
        result.update({s: Attribution(other, COMPLEMENT_CONFIDENCE, cue) for s in anonymous})
        return result
    cues = (*CUES, *_company_cues(company_names))
    texts = {s: " ".join(t for sp, t in turns if sp == s) for s in anonymous}
    result.update(by_content(anonymous, texts, cues=cues))
    return result


def by_content(
    speakers: Sequence[str], texts: dict[str, str], *, cues: Sequence[Cue] = CUES
) -> dict[str, Attribution]:
    """Anonymous speakers (in order of first speech): the one with the most agent evidence, net of
    customer evidence, is the agent; the first speaker gets a small head start."""
    hits = {s: _matches(texts.get(s, ""), cues) for s in speakers}
    net = {s: _net(hits[s]) for s in speakers}
    net[speakers[0]] += FIRST_SPEAKER_WEIGHT
    agent = max(speakers, key=lambda s: net[s])  # ties go to the earlier speaker
    others = [s for s in speakers if s != agent]
    if not others:
        role = Role.AGENT if net[agent] > 0 else Role.CUSTOMER
        reason = _reason(hits[agent], fallback="first speaker; no content cues")
        return {agent: Attribution(role, _confidence(abs(net[agent])), reason)}
    runner_up = max(net[s] for s in others)
    fallback = "first speaker; no content cues" if agent == speakers[0] else "the others' cues"
    result = {
        agent: Attribution(
            Role.AGENT, _confidence(net[agent] - runner_up), _reason(hits[agent], fallback=fallback)
        )
    }
    for s in others:
        reason = _reason(hits[s], fallback="the other speaker is the agent")
        result[s] = Attribution(Role.CUSTOMER, _confidence(net[agent] - net[s]), reason)
    return result


def _company_cues(names: Iterable[str]) -> list[Cue]:
    """The tenant's company names: agents say them in greetings and closings."""
    return [
        _cue("company name", Role.AGENT, COMPANY_WEIGHT, rf"\b{re.escape(_normal(n))}\b")
        for n in names
        if n.strip()
    ]


def _normal(text: str) -> str:
    return text.lower().replace("\u2019", "'").strip()


def _matches(text: str, cues: Sequence[Cue]) -> list[Cue]:
    normal = _normal(text)
    found: dict[tuple[str, Role], Cue] = {}
    for cue in cues:
        key = (cue.name, cue.role)
        if cue.pattern.search(normal) and (key not in found or found[key].weight < cue.weight):
            found[key] = cue
    return sorted(found.values(), key=lambda c: -c.weight)


def _net(hits: Sequence[Cue]) -> float:
    return sum(c.weight if c.role is Role.AGENT else -c.weight for c in hits)


def _confidence(margin: float) -> float:
    span = MAX_CONFIDENCE - MIN_CONFIDENCE
    return round(MIN_CONFIDENCE + span * (1 - math.exp(-max(margin, 0.0) / MARGIN_SCALE)), 3)


def _reason(hits: Sequence[Cue], *, fallback: str) -> str:
    """The strongest cues this speaker said (at most three), else why the order decided."""
    if not hits:
        return fallback
    return "said " + ", ".join(f"{c.role.value} cue '{c.name}'" for c in hits[:3])

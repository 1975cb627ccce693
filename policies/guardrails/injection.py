# The signal table keeps one pattern per line so it reads as a table.
# ruff: noqa: E501
"""Prompt-injection scorer: weighted known patterns combined into a score in [0, 1].

Each signal is a pattern over the normalised, lowercased text with a weight; signals that fire are
combined as a noisy-OR, `1 - prod(1 - w)`, so one strong signal (an instruction to ignore the
previous instructions: 0.85) crosses the default 0.5 threshold alone, while weak ones (a mention of
"jailbreak", an `## Instructions` heading, "never refuse") only do in company. Families:

* override: ignore/disregard/forget the previous instructions, new instructions, "from now on";
* jailbreak: DAN and other personas, "developer mode", no ethical guidelines, stay in character;
* extraction: reveal/print/repeat the system prompt or the text above;
* delimiter: chat-template tokens (`<|im_start|>`, `[INST]`, `<<SYS>>`), `### System:` headings,
  fake role lines, closing tags that try to end the data section, "note to the AI reading this";
* encoded: base64, base64url or hex runs that decode to text, scored again (one level deep);
* invisible_unicode: Unicode tag characters (ASCII smuggling, decoded and scored), runs of zero-width
  characters, bidi overrides. Invisible characters are removed and NFKC applied before matching, so
  `ig\\u200bnore` and full-width letters do not hide a phrase.

The text is split into words once. A signal's pattern runs only when a word of each of its groups is
present (a set test), and then only around the occurrences of its anchor words, so a long clean prompt
costs one tokenisation plus a few set tests per signal.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

_VERBS = r"(?:ignore|ignoring|disregard|forget|override|bypass|skip|neglect|overlook|abandon|set aside|put aside|(?:do not|don't|stop) follow(?:ing)?)"
_STRONG_ADJ = r"(?:previous|prior|above|preceding|earlier|former|original|initial|foregoing|system|developer)"
_RULE_NOUNS = (
    r"(?:instructions?|prompts?|rules|directions?|directives?|guidelines|guidance|commands?|constraints"
    r"|restrictions|programming|orders|policies)"
)
# "ignore previous messages" is an override, "ignore the previous error message" is not: these nouns
# count only right after the adjective.
_WEAK_RULE_NOUNS = r"(?:messages?|tasks?|context)"
# Between "ignore" and "previous": only words that point at the instructions themselves ("ignore all of
# your previous instructions"), so "ignore the typo in my previous message" is not an override.
_DETERMINERS = (
    r"(?:\s+(?:all|any|every|each|of|the|your|my|our|these|those|this|that|its|their|whatever|everything|what"
    r"|was|were|is|are|said|given|written|stated|in|and|or|both|entire|whole|other|above|before|to|you|were|told)){0,5}"
)
_HIDDEN_ADJ = r"(?:system|initial|hidden|original|secret|internal|developer|confidential|pre-?)"
_ASKS = r"(?:reveal|show|print|display|output|repeat|tell|share|leak|dump|expose|disclose|write out|spell[- ]check|copy|recite)"


def _w(words: str) -> frozenset[str]:
    return frozenset(words.split())


_IGNORE_VERBS = _w(
    "ignore ignoring disregard forget override bypass skip neglect overlook abandon aside follow following"
)
_ASK_VERBS = _w("reveal show print display output repeat tell share leak dump expose disclose write spell copy recite")
_PROMPT_NOUNS = _w(
    "prompt prompts instruction instructions message messages rules configuration guidelines directive directives context"
)
_LIMIT_NOUNS = _w(
    "restriction restrictions limitation limitations limits filter filters guideline guidelines boundaries rules policy"
    " policies constraints principles considerations standards safeguards"
)
_NEGATIONS = _w("never not don dont do cannot can won will must none no without")
_ROLES = _w("system assistant developer admin root user")


@dataclass(frozen=True, slots=True)
class _Signal:
    """A weighted pattern. It runs only when a word of every group occurs in the text (and every needle
    for punctuation), and then only where a word of the anchor group occurs: the pattern is tried from
    `before` characters ahead of each occurrence up to `reach` characters after it (patterns that start
    with an anchor word are only tried at the occurrence itself)."""

    sid: str
    category: str
    weight: float
    groups: tuple[frozenset[str], ...]
    pattern: re.Pattern[str] | None = None
    needles: tuple[str, ...] = ()
    anchor: int = 0
    before: int = 0
    reach: int = 120


def _s(
    sid: str,
    category: str,
    weight: float,
    groups: tuple[frozenset[str], ...],
    pattern: str | None = None,
    **options: object,
) -> _Signal:
    return _Signal(sid, category, weight, groups, re.compile(pattern) if pattern else None, **options)  # type: ignore[arg-type]


_SIGNALS: tuple[_Signal, ...] = (
    _s("ignore_previous", "override", 0.85,
       (_IGNORE_VERBS, _w("previous prior above preceding earlier former original initial foregoing system developer"),
        _w("instruction instructions prompt prompts rules direction directions directive directives guidelines"
                              " guidance command commands context constraints restrictions programming orders policies message"
                              " messages task tasks")),
       rf"\b{_VERBS}\b{_DETERMINERS}\s*\b{_STRONG_ADJ}\b(?:[^.!?\n]{{0,40}}?\b{_RULE_NOUNS}|\s+{_WEAK_RULE_NOUNS})\b"
       rf"|\b{_VERBS}\b{_DETERMINERS}\s*\b(?:instructions?|prompts?|rules|directions|directives|guidelines|commands|orders"
       r"|programming)\b[^.!?\n]{0,30}?\b(?:above|before|earlier|previously|so far|until now)\b", before=8),
    _s("ignore_all_rules", "override", 0.5,
       (_w("ignore disregard forget override bypass"), _w("all any every"),
        _w("instructions rules guidelines restrictions programming policies safeguards filters")),
       r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all|any|every)\s+(?:of\s+)?(?:your|the|these|those)?\s*"
       r"(?:instructions|rules|guidelines|restrictions|programming|policies|safeguards|filters)\b"),
    _s("ignore_everything", "override", 0.45, (_w("ignore disregard forget"), _w("everything all what")),
       r"\b(?:ignore|disregard|forget)\s+(?:everything|all(?: of)? (?:that|this|the above)|what (?:i|you were|you've been) (?:said|told))"),
    _s("ignore_previous_translated", "override", 0.85,
       (_w("ignoriere ignorieren ignoriert vergiss vergessen missachte ignorez ignore oubliez oublie ignora ignorar olvida"
           " olvide dimentica dimenticate negeer vergeet"),
        _w("anweisungen instruktionen befehle regeln anordnungen instructions consignes règles regles instrucciones órdenes"
           " ordenes reglas istruzioni regole instruções instrucoes regras instructies regels")),
       r"\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\s+sie|missachte|ignorez|ignore|oubliez|oublie|ignora|ignorar|olvid[ae]"
       r"|dimentica(?:te)?|negeer|vergeet)\b[^.!?\n]{0,50}?\b(?:vorherigen|bisherigen|obigen|vorigen|alle[nr]?"
       r"|pr[ée]c[ée]dentes?|ant[ée]rieures?|anteriores|precedenti|anteriori|vorige|eerdere|todas|toutes|tutte)\b[^.!?\n]{0,40}?"
       r"\b(?:anweisungen|instruktionen|befehle|regeln|anordnungen|instructions|consignes|r[èe]gles|instrucciones|[óo]rdenes"
       r"|reglas|istruzioni|regole|instru[çc][õo]es|regras|instructies|regels)\b", before=8),
    _s("new_instructions", "override", 0.4,
       (_w("new updated real actual true revised secret"),
        _w("instruction instructions task rule rules directive directives orders prompt policy policies")),
       r"\b(?:new|updated|real|actual|true|revised|secret)\s+(?:instructions?|task|rules?|directives?|orders|system prompt"
       r"|polic(?:y|ies))\s*(?::|are\b|is\b)"),
    _s("from_now_on", "override", 0.3, (_w("now"), _w("from"), _w("on")),
       r"\bfrom now on\b[^.\n]{0,30}\b(?:you|your|act|respond|answer|reply|behave|pretend)\b", before=5),
    _s("instead_say", "override", 0.3, (_w("instead"), _w("say print write output respond reply return")),
       r"\binstead\b,?\s+(?:just\s+)?(?:say|print|write|output|respond|reply|return)\b"),
    _s("stop_everything", "override", 0.5, (_w("stop"), _w("everything what all")),
       r"\bstop (?:everything|what you(?:'re| are) doing|all (?:previous|prior) (?:tasks|instructions))\b"),
    _s("just_print", "override", 0.35, (_w("just only simply"), _w("print say output write respond reply")),
       r"\b(?:just|only|simply) (?:print|say|output|write|respond with|reply with)\s*[\"'“:]"),
    _s("no_longer_bound", "jailbreak", 0.6,
       (_w("longer not broken break set freed free"),
        _w("bound restricted limited constrained required obligated confines restrictions rules limitations shackles chains"
           " guidelines programming")),
       r"\b(?:no longer|not) (?:bound|restricted|limited|constrained|required to follow|obligated)\b"
       r"|\b(?:broken|break|set|freed|free)\s+(?:free\s+)?(?:from|of)\s+(?:the\s+|your\s+|all\s+|any\s+)?(?:typical\s+|usual\s+)?"
       r"(?:confines|restrictions|rules|limitations|shackles|chains|guidelines|programming)\b", anchor=1, before=40),
    _s("do_anything_now", "jailbreak", 0.8, (_w("anything"), _w("now")), r"\bdo anything now\b", before=3),
    _s("dan", "jailbreak", 0.6, (_w("dan"),),
       r"\b(?:you are|you're|you will be|act as|become|pretend to be|role of)\s+(?:now\s+)?(?:a\s+|an\s+)?dan\b"
       r"|\bdan\s*(?:mode|[0-9]+(?:\.[0-9]+)?)\b", before=24),
    _s("jailbreak_mode", "jailbreak", 0.55,
       (_w("mode"), _w("jailbreak jailbroken unrestricted unfiltered uncensored evil chaos illegality anarchy limitless nofilter"
                       " no-filter filter dude stan")),
       r"\b(?:jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos|illegality|anarchy|limitless|no[- ]?filter|dude|stan)"
       r"\s+mode\b", before=16),
    _s("developer_mode", "jailbreak", 0.3, (_w("mode"), _w("developer dev god sudo opposite")),
       r"\b(?:developer|dev|god|sudo|opposite)\s+mode\b", before=12),
    _s("jailbreak_word", "jailbreak", 0.35, (_w("jailbreak jailbroken jailbreaking jailbreaks"),)),
    _s("stay_in_character", "jailbreak", 0.45,
       (_w("character"), _w("stay stays remain remains keep staying remaining break breaking")),
       r"\b(?:stays?|remains?|keep|staying|remaining)\s+in\s+(?:a\s+|the\s+)?character\b|\bbreak(?:ing)?\s+(?:out\s+of\s+)?character\b",
       before=24),
    _s("named_mode", "jailbreak", 0.45, (_w("mode"), _w("stay stays remain enter enable activate now")),
       r"\b(?:stay|stays|remain|enter|enable|activate|now)\s+(?:in\s+)?"
       r"(?!(?:developer|dev|dark|light|debug|safe|airplane|incognito|compatibility|maintenance|test|edit|sleep|power"
       r"|game|focus|night|silent|offline|demo|admin|reader|private|kiosk)\s)[a-z]+\s+mode\b", anchor=1),
    _s("no_limits", "jailbreak", 0.3,
       (_w("no without"), _w("limitations limits restrictions boundaries filters rules censorship")),
       r"\b(?:no|without)\s+(?:any\s+)?(?:limitations|limits|restrictions|boundaries|filters|rules|censorship)\b", before=12),
    _s("drop_identities", "override", 0.5, (_w("drop abandon discard"), _w("identities identity guidelines restrictions rules persona")),
       r"\b(?:drop|abandon|discard)\s+(?:all\s+)?(?:other\s+|your\s+|previous\s+)?(?:identities|identity|guidelines|restrictions|rules|persona)\b"),
    _s("any_request", "jailbreak", 0.35,
       (_w("answer respond reply generate fulfil fulfill fulfills fulfils"), _w("any every all"),
        _w("request requests question questions prompt prompts content")),
       r"\b(?:answer|respond to|reply to|generate|fulfil+s?)\s+(?:any|every|all)\s+(?:kind\s+of\s+)?"
       r"(?:requests?|questions?|prompts?|content)\b[^.\n]{0,60}\b(?:regardless|without|no matter|even)\b"),
    _s("never_refuse", "jailbreak", 0.3, (_w("refuse decline"), _NEGATIONS),
       r"\b(?:never|not|don'?t|do not|cannot|can'?t|won'?t|will not|must not)\s+(?:ever\s+)?(?:refuse|decline)\b", before=16),
    _s("no_ethics", "jailbreak", 0.45,
       (_w("no without free not unbound beyond ignore ignores bypass bypasses bypassing lack lacks devoid doesn does never"),
        _w("ethical moral legal content safety openai anthropic ai"), _LIMIT_NOUNS),
       r"\b(?:no|without|free of|free from|not bound by|unbound by|beyond|ignores?|bypass(?:es|ing)?|lacks?|devoid of"
       r"|(?:doesn'?t|does not|never) (?:care about|cares about|have|follow|follows))\s+(?:any\s+|all\s+|the\s+|your\s+|its\s+)?"
       r"(?:ethical|moral|legal|content|safety|openai'?s?|anthropic'?s?|ai)\s+(?:and\s+[a-z]+\s+)?"
       r"(?:restrictions?|limitations?|limits|filters?|guidelines?|boundaries|rules|polic(?:y|ies)|constraints|principles"
       r"|considerations|standards|safeguards)\b", anchor=1, before=40),
    _s("amoral", "jailbreak", 0.25, (_w("amoral unfiltered uncensored unrestricted unethical immoral"),)),
    _s("no_warnings", "jailbreak", 0.3,
       (_w("warning warnings disclaimer disclaimers disclamer disclamers caveats"), _w("no without never delete remove don dont")),
       r"\b(?:no|without|never (?:send|give|include|add)|delete all|remove all|don'?t (?:add|include|give))\s+(?:any\s+)?"
       r"(?:additional\s+)?(?:warnings?|disclaimers?|disclamers?|caveats)\b", before=40),
    _s("not_as_chatgpt", "jailbreak", 0.4,
       (_w("chatgpt gpt claude openai anthropic ai language"), _w("not never policy policies")),
       r"\b(?:respond|reply|answer|speak|talk)\s+(?:not|never)\s+as\s+(?:chatgpt|gpt|an ai|a language model|claude|the assistant)\b"
       r"|\bnot as chatgpt\b|\b(?:chatgpt|openai|anthropic)'?s? (?:content )?polic(?:y|ies)\b", before=32),
    _s("unrestricted_persona", "jailbreak", 0.5,
       (_w("pretend act behave roleplay role-play imagine simulate"), _w("ai assistant model chatbot bot gpt llm"),
        _w("without no unrestricted unfiltered uncensored evil jailbroken")),
       r"\b(?:pretend|act|behave|roleplay|role-play|imagine|simulate)\s+(?:to be|as|like|that you are|you are|you're)\s+"
       r"(?:a |an )?(?:[a-z]+\s+){0,2}(?:ai|assistant|model|chatbot|bot|gpt|llm)\b[^.\n]{0,60}"
       r"\b(?:without|no|unrestricted|unfiltered|uncensored|evil|jailbroken)\b"),
    _s("no_apologies", "jailbreak", 0.35,
       (_w("sorry apologize apologise cannot can ai"), _NEGATIONS),
       r"\b(?:never|not|don'?t|do not|cannot|can'?t|won'?t|will not|must not|none of)\b[^.\n]{0,60}"
       r"(?:i'?m sorry|i apologi[sz]e|i cannot|i can'?t|as an ai|ai language model)", before=80),
    _s("lawless_world", "jailbreak", 0.4,
       (_w("hypothetical fictional imaginary alternate parallel other"), _w("world universe reality scenario"), _w("no without")),
       r"\b(?:(?:in|into|from)\s+)?(?:a|an|this|another)\s+(?:hypothetical|fictional|imaginary|alternate|parallel|other)\s+"
       r"(?:world|universe|reality|scenario)\b[^.\n]{0,80}\b(?:no|without)\s+(?:rules|laws|limits|limitations|restrictions|policies"
       r"|ethics|morals)", before=16),
    _s("reveal_system_prompt", "extraction", 0.75,
       (_ASK_VERBS, _w("system initial hidden original secret internal developer confidential pre-prompt preprompt pre"), _PROMPT_NOUNS),
       rf"\b{_ASKS}\b(?:\s+[a-z]+){{0,3}}?\s+(?:your|the|its|all|any|me\s+your|me\s+the)\s+(?:[a-z]+\s+){{0,2}}?{_HIDDEN_ADJ}\s*"
       r"(?:prompts?|instructions?|messages?|rules|guidelines|directives?|context)\b"
       r"(?!\s+(?:feature|features|works?|parameter|field|setting|settings|option|role|api|design|engineering|template"
       r"|best practices|examples?)\b)"),
    _s("reveal_previous_instructions", "extraction", 0.5,
       (_ASK_VERBS, _w("previous prior above preceding"), _w("prompt prompts instruction instructions rules directive directives")),
       rf"\b{_ASKS}\b(?:\s+[a-z]+){{0,3}}?\s+(?:your|the|all|me\s+your|me\s+the)\s+(?:previous|prior|above|preceding)\s+"
       r"(?:prompts?|instructions?|rules|directives?)\b"),
    _s("what_is_your_prompt", "extraction", 0.5,
       (_w("what"), _w("your you"), _w("prompt instructions rules directives told instructed programmed")),
       r"\bwhat (?:is|are|was|were)\s+your\s+(?:[a-z]+\s+)?(?:system prompt|initial prompt|original prompt|instructions|rules|directives)\b"
       r"|\bwhat (?:were|have) you (?:been )?(?:told|instructed|programmed)\b"),
    _s("repeat_above", "extraction", 0.6,
       (_w("repeat print output say write recite copy"), _w("words text everything all content lines sentences tokens"),
        _w("above before prior preceding")),
       r"\b(?:repeat|print|output|say|write|recite|copy)\b(?:\s+[a-z]+){0,3}?\s+(?:words|text|everything|all|content|lines|sentences|tokens)"
       r"\s+(?:[a-z]+\s+){0,2}?(?:above|before|prior|preceding)\b"),
    _s("starting_with_you_are", "extraction", 0.5, (_w("starting beginning begins starts"), _w("you"), _w("are")),
       r"\b(?:starting|beginning|begins|starts)\s+with\s+[\"'“]?you are\b"),
    _s("chat_template_token", "delimiter", 0.45,
       (_w("im_start im_end im_sep system user assistant endoftext begin_of_text end_of_text start_header_id end_header_id eot_id"
           " eom_id pad sep end fim_prefix fim_suffix fim_middle"),),
       r"<\|(?:im_start|im_end|im_sep|system|user|assistant|endoftext|begin_of_text|end_of_text|start_header_id|end_header_id"
       r"|eot_id|eom_id|fim_[a-z]+|pad|sep|end)\|>", needles=("<|",), before=2, reach=24),
    _s("chat_template_pair", "delimiter", 0.5,
       (_w("im_start im_end system user assistant endoftext begin_of_text start_header_id eot_id"),),
       r"<\|[a-z_]{3,20}\|>[\s\S]{0,400}?<\|[a-z_]{3,20}\|>", needles=("<|",), before=2, reach=420),
    _s("inst_markers", "delimiter", 0.6, (_w("inst /inst sys /sys start_of_turn end_of_turn system /system system_prompt"),),
       r"\[/?inst\]|<</?sys>>|<(?:start|end)_of_turn>|\[/?system(?:_prompt)?\]", before=3, reach=24),
    _s("system_heading", "delimiter", 0.45, (_w("system admin developer instructions instruction new"),),
       r"(?:^|\n)[ \t]*#{1,6}[ \t]*(?:system|system prompt|new instructions?|admin|developer)[ \t]*:?[ \t]*(?=\n|$)"
       r"|(?:^|\n)[ \t]*#{1,6}[ \t]*(?:system|new instructions?)[ \t]*:", needles=("#",), before=12, reach=40),
    _s("instruction_heading", "delimiter", 0.3, (_w("instructions instruction response assistant"),),
       r"(?:^|\n)[ \t]*#{2,6}[ \t]*(?:instructions?|response|assistant)[ \t]*:", needles=("#",), before=12, reach=24),
    _s("fake_role_line", "delimiter", 0.35, (_ROLES,), r"(?:^|\n)[ \t]*(?:system|assistant|developer|admin|root)[ \t]*:[ \t]*[^ \t\n]",
       needles=(":",), before=8, reach=24),
    _s("closing_tag", "delimiter", 0.45,
       (_w("/system /sys /admin /developer /instructions /instruction /user_input /user /context /prompt /document /data"),),
       r"</(?:system|sys|admin|developer|instructions?|user_input|user|context|prompt|document|data)>", needles=("</",), before=2, reach=24),
    _s("opening_tag", "delimiter", 0.2, (_w("system sys admin developer"),), r"<(?:system|sys|admin|developer)>",
       needles=("<",), before=2, reach=24),
    _s("section_marker", "delimiter", 0.4,
       (_w("end begin start override sudo"), _w("system user admin developer document context input prompt override mode")),
       r"\b(?:end|begin|start)\s+(?:of\s+)?(?:the\s+)?(?:system|user|admin|developer|document|context|input|prompt)\s*"
       r"(?:prompt|message|input|instructions?|text|data)?\s*(?:\]|-{2,}|={2,}|\*{2,}|#{2,}|>)"
       r"|\b(?:system|admin|developer|emergency|security)\s+override\b|\bsudo\s+mode\b", anchor=0, before=20),
    _s("note_to_ai", "delimiter", 0.6,
       (_w("ai ais assistant assistants llm llms model models agent agents chatbot language"),
        _w("important attention urgent note reading processing reads summarizing summarising")),
       r"\b(?:important|attention|urgent|note)\s*(?:!|:)\s*(?:new\s+)?(?:instructions?|message)\s+(?:for|to)\s+(?:the\s+)?"
       r"(?:ai|assistant|model|llm|agent|chatbot)\b|\b(?:note\s+)?(?:to|for|attention)\s*:?\s+(?:the\s+|any\s+)?"
       r"(?:(?:ai|assistant|llm|language model|model|agent|chatbot)s?\s+){1,3}(?:reading|processing|that reads|summari[sz]ing)\b",
       anchor=1, before=60),
)  # fmt: skip

# Punctuation splits words, except the characters that occur inside the words signals look for.
_WORD_BREAKS = str.maketrans({c: " " for c in "!\"#$%&'()*,.:;<>?@[\\]^`{|}~\u2018\u2019\u201c\u201d"})
_MAX_ANCHORS = 64
_LONG_TOKEN = 24
_ENCODED_RUN = re.compile(r"[A-Za-z0-9+/_\-](?<![A-Za-z0-9+/_\-=].)[A-Za-z0-9+/_\-]{23,8191}={0,2}")
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e"
_ZERO_WIDTH_RUN = re.compile(f"[{_ZERO_WIDTH}]{{2,}}")
_BIDI_OVERRIDE = re.compile("[\u202d\u202e]")
_BIDI_OTHER = re.compile("[\u202a-\u202c\u2066-\u2069]")
_INVISIBLE = re.compile(f"[{_ZERO_WIDTH}\u00ad\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")
_MAX_DECODED_RUNS = 8
# Quoted attack phrases in text that is about attacks (security training, a question, a translation).
QUOTED_WEIGHT = 0.4
_MAX_MENTION_TEXT = 2_000  # a question or a note about an attack is short; long texts are scored as they are
_QUOTED = re.compile(
    r"(?<![A-Za-z])'([^'\n]{8,300})'(?![A-Za-z])|\"([^\"\n]{8,300})\"|\u201c([^\u201d\n]{8,300})\u201d|`([^`\n]{8,300})`"
)
_META = re.compile(
    r"\b(?:attacks?|attackers?|attacking|injections?|jailbreaks?|phrases?|strings?|examples?|famous|security|research"
    r"|training|means?|meaning|paste|spot|detect|detection|recogni[sz]e|classif(?:y|ier)|filter)\b"
)


def _index(signals: tuple[_Signal, ...]) -> tuple[dict[str, tuple[_Signal, ...]], tuple[_Signal, ...]]:
    """Each signal filed under the words of its smallest group: a text can only fire the signals
    filed under its own words (plus the few with no word groups), so most signals are never tried."""
    by_word: dict[str, list[_Signal]] = {}
    always: list[_Signal] = []
    for signal in signals:
        if not signal.groups:
            always.append(signal)
            continue
        for word in min(signal.groups, key=len):
            by_word.setdefault(word, []).append(signal)
    return {w: tuple(ss) for w, ss in by_word.items()}, tuple(always)


_BY_WORD, _ALWAYS = _index(_SIGNALS)


def _fires(signal: _Signal, low: str, words: frozenset[str] | set[str]) -> bool:
    if any(words.isdisjoint(group) for group in signal.groups):
        return False
    if signal.needles and not any(needle in low for needle in signal.needles):
        return False
    if signal.pattern is None:
        return True
    n = len(low)
    for word in words & signal.groups[signal.anchor]:
        pos = low.find(word)
        seen = 0
        while pos >= 0 and seen < _MAX_ANCHORS:
            if signal.before == 0:
                if signal.pattern.match(low, pos):
                    return True
            elif signal.pattern.search(low, max(0, pos - signal.before), min(n, pos + signal.reach)):
                return True
            pos = low.find(word, pos + 1)
            seen += 1
    return False


@dataclass(frozen=True, slots=True)
class InjectionScore:
    """A score in [0, 1], the families of the signals that fired and their ids (no text, no offsets).

    `signals` are pattern ids (`ignore_previous`, `quoted:dan`, `encoded:...`) and, when the learned
    model scored higher than the patterns, `learned` (user text) or `learned_indirect` (a tool result).
    """

    score: float
    categories: tuple[str, ...]
    signals: tuple[str, ...] = ()


class InjectionScorer:
    """The pattern-based prompt-injection detector (the `patterns` detector of `prompt_injection`)."""

    def score(self, text: str) -> InjectionScore:
        fired: dict[str, tuple[str, float]] = {}
        mentions = _quoted_mentions(text)
        if mentions is None:
            self._collect(text, fired, depth=0)
        else:  # talk about attacks that quotes one: the quote counts for less than the same words said
            outside, quoted = mentions
            self._collect(outside, fired, depth=0)
            for quote in quoted:
                mentioned: dict[str, tuple[str, float]] = {}
                self._collect(quote, mentioned, depth=1)
                for sid, (category, weight) in mentioned.items():
                    fired.setdefault("quoted:" + sid, (category, weight * QUOTED_WEIGHT))
        miss = 1.0
        for _category, weight in fired.values():
            miss *= 1.0 - weight
        categories = tuple(sorted({category for category, _ in fired.values()}))
        return InjectionScore(round(1.0 - miss, 4), categories, tuple(sorted(fired)))

    def _collect(self, text: str, fired: dict[str, tuple[str, float]], depth: int) -> None:
        if not text.isascii():
            self._unicode_signals(text, fired, depth)
            text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
        low = text.lower()
        tokens = low.translate(_WORD_BREAKS).split()
        words = set(tokens)
        candidates = {signal.sid: signal for signal in _ALWAYS}
        for word in words:
            for signal in _BY_WORD.get(word, ()):
                candidates[signal.sid] = signal
        for sid, signal in candidates.items():
            if sid not in fired and _fires(signal, low, words):
                fired[sid] = (signal.category, signal.weight)
        if depth == 0 and tokens and max(map(len, tokens)) >= _LONG_TOKEN:
            self._encoded_signals(text, fired)

    def _encoded_signals(self, text: str, fired: dict[str, tuple[str, float]]) -> None:
        decoded_runs = 0
        for m in _ENCODED_RUN.finditer(text):
            run = m.group()
            if not (any(c.isupper() for c in run) and any(c.islower() for c in run)) and not _is_hex(run):
                continue
            decoded = _decode(run)
            if decoded is None:
                continue
            nested: dict[str, tuple[str, float]] = {}
            self._collect(decoded, nested, depth=1)
            fired.setdefault("encoded_text", ("encoded", 0.2))
            for sid, (_category, weight) in nested.items():
                fired.setdefault("encoded:" + sid, ("encoded", weight))
            decoded_runs += 1
            if decoded_runs >= _MAX_DECODED_RUNS:
                break

    def _unicode_signals(self, text: str, fired: dict[str, tuple[str, float]], depth: int) -> None:
        for m in _TAGS.finditer(text):
            if m.start() > 0 and text[m.start() - 1] == "\U0001f3f4":
                continue  # subdivision flag emoji (England, Scotland, Wales) are spelled with tag characters
            fired["unicode_tags"] = ("invisible_unicode", 0.8)
            if depth == 0:
                hidden = "".join(chr(ord(c) - 0xE0000) for c in m.group())
                nested: dict[str, tuple[str, float]] = {}
                self._collect(hidden, nested, depth=1)
                for sid, (_category, weight) in nested.items():
                    fired.setdefault("hidden:" + sid, ("invisible_unicode", weight))
        zero_width = sum(text.count(c) for c in _ZERO_WIDTH)
        if _ZERO_WIDTH_RUN.search(text) or zero_width >= 8:
            fired["zero_width"] = ("invisible_unicode", 0.45)
        if _BIDI_OVERRIDE.search(text) or len(_BIDI_OTHER.findall(text)) >= 3:
            fired["bidi_override"] = ("invisible_unicode", 0.4)
            if depth == 0:  # a right-to-left override shows reversed text the right way round
                flipped: dict[str, tuple[str, float]] = {}
                self._collect(_INVISIBLE.sub("", text)[::-1], flipped, depth=1)
                for sid, (_category, weight) in flipped.items():
                    fired.setdefault("reversed:" + sid, ("invisible_unicode", weight))


def without_mentions(text: str) -> str:
    """The text with its quoted attack phrases cut out when it talks about attacks (see
    `_quoted_mentions`), else the text: what the learned models read, so that a question about
    "ignore previous instructions" is not scored as the instruction itself."""
    mentions = _quoted_mentions(text)
    return text if mentions is None else mentions[0]


def _quoted_mentions(text: str) -> tuple[str, list[str]] | None:
    """(the text with its quotes cut out, the quotes) when the text talks about attacks and quotes
    something ("what do attackers mean by 'ignore previous instructions'?"); None otherwise. A text
    that is all quote, or that never speaks of attacks, phrases or examples, is scored as it is."""
    if len(text) > _MAX_MENTION_TEXT or not _META.search(text.lower()):
        return None
    quoted = list(_QUOTED.finditer(text))
    if not quoted:
        return None
    outside = _QUOTED.sub(" ", text)
    if len(outside.split()) < 3 or not _META.search(outside.lower()):
        return None
    return outside, [next(g for g in m.groups() if g is not None) for m in quoted]


def _is_hex(run: str) -> bool:
    return len(run) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in run)


def _decode(run: str) -> str | None:
    """The text a base64, base64url or hex run encodes, when it is readable text."""
    attempts: list[bytes] = []
    try:
        if _is_hex(run):
            attempts.append(bytes.fromhex(run))
        padded = run + "=" * (-len(run) % 4)
        attempts.append(base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True))
    except (binascii.Error, ValueError):
        pass
    for raw in attempts:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        printable = sum(1 for c in text if c.isprintable() or c in "\n\t")
        if len(text) >= 8 and printable >= 0.9 * len(text) and " " in text and any(c.isalpha() for c in text):
            return text
    return None

"""The crisis override: rules, help lines, the Rasa component and the replies people see."""

from __future__ import annotations

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.safety import SafetyOverride, default_detector
from knowledge.helplines import default_helplines
from settings import ROOT

DATA = ROOT / "tests" / "data"
# Sets the rules were fitted to: regression tests. The other sets (safety_heldout2.yml, the
# independent dev and test splits) are reported by `make eval`, not asserted here.
TUNED_SETS = ["safety_set.yml", "safety_heldout.yml"]


def _rows(name: str) -> list[dict]:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))["examples"]


@pytest.mark.parametrize("name", TUNED_SETS)
def test_every_crisis_message_in_the_labelled_sets_is_caught(name: str) -> None:
    """Every crisis row has a rule match: a sure one, or an ambiguous word (the weak tier,
    which counts when the model agrees: the trained-model test below checks the routing)."""
    detector = default_detector()
    missed = [r["text"] for r in _rows(name) if r["label"] != "none"
              and not (lambda found: found.hits or found.weak)(detector.analyse(r["text"]))]
    assert not missed


@pytest.mark.parametrize("name", TUNED_SETS)
def test_every_crisis_row_of_the_tuned_sets_gets_its_kinds_numbers_for_its_region(
    name: str, trained_model,
) -> None:
    """Through the whole trained NLU pipeline and the crisis action, as a person would see
    it: the reply must carry the numbers of the row's kind (988 / Samaritans for suicide,
    Poison Control / NHS 111 for an overdose, ...) for the region the message implies."""
    import asyncio

    from navigator.evaluate import _parse_all, crisis_reply_for, judge_crisis_row

    rows = [r for r in _rows(name) if r["label"] != "none"]
    parses, _ = asyncio.run(_parse_all(trained_model, [r["text"] for r in rows]))
    wrong = [(r["label"], r.get("region"), r["text"]) for r, p in zip(rows, parses, strict=True)
             if not judge_crisis_row(r, crisis_reply_for(p), "US")["caught"]]
    assert wrong == []


@pytest.mark.parametrize("name", TUNED_SETS)
def test_no_false_alarm_on_the_look_alikes(name: str) -> None:
    detector = default_detector()
    alarms = [r["text"] for r in _rows(name)
              if r["label"] == "none" and detector.classes(r["text"])]
    assert not alarms


def test_labelled_sets_are_big_enough() -> None:
    rows = _rows("safety_set.yml")
    assert sum(r["label"] != "none" for r in rows) >= 60
    assert sum(r["label"] == "none" for r in rows) >= 60


# Real questions the rules flag, left so on purpose: a second-hand report that someone on
# hospice "was unresponsive" and "is in a comatose state" reads like an emergency, and
# narrowing the rule to spare it would miss people reporting one now.
KNOWN_ALARMS = ("he was unresponsive. At present he is in a comatose state",)


def test_rules_never_fire_on_ordinary_training_or_real_world_questions(
    nlu_examples: dict[str, list[str]],
) -> None:
    from navigator.evaluate import training_texts

    detector = default_detector()
    # every training text (entity markup removed) but the crisis intents' (written without
    # markup: were one marked up, it would stay in here, a stricter test, never a weaker one)
    crisis = {text for intent, texts in nlu_examples.items() if intent.startswith("crisis_")
              for text in texts}
    ordinary = [text for text in training_texts() if text not in crisis]
    # the real questions' dev split only: a failure prints its rows, and the test split
    # must stay unread
    ordinary += [r["text"] for r in _rows("realworld/dev.yml")]
    assert len(ordinary) > 2000
    alarms = [t for t in ordinary if detector.classes(t)]
    assert [t for t in alarms if not any(k in t for k in KNOWN_ALARMS)] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't want to live anymore", ["suicide"]),
        ("I'm not suicidal, just worn out", []),
        ("i feel sucidal tonight", ["suicide"]),                    # typo
        ("is assisted suicide legal in the UK?", []),               # a question about the law
        ("mum wants to die at home, not in hospital", []),          # a wish about place
        ("he isn't breathing", ["emergency"]),
        ("no chest pain today, just tired", []),                    # negated
        ("he had a seizure last year, can palliative care help?", []),  # over
        ('what does "unresponsive" mean in the hospice notes?', []),   # a quoted term
        ("my back pain is killing me", []),                         # an idiom
        ("my son took a whole bottle of her pills", ["overdose"]),
        ("my brother is stealing dad's morphine", ["abuse"]),
        ("we're taking her home from hospital tomorrow", []),
        ("he's not breathing and I think he took all his pills", ["emergency", "overdose"]),
        ("the care fees are wiping out his savings", []),          # not "swiping"
        ("i was changing her bed and talking to her", []),          # not "hanging", "taking"
        # a child into someone's medicines; a carer giving them is not
        ("my 3 year old got into grandad's morphine tablets", ["overdose"]),
        ("the baby had one of nan's fentanyl patches in his mouth", ["overdose"]),
        ("she swallowed some of my liquid methadone", ["overdose"]),
        ("mum ate all of her dinner and took her meds", []),
        ("she can't lift her hand so I put the pills in her mouth for her", []),
        # a threat to the writer's life is abuse (its reply has the emergency number too)
        ("my husband is going to kill me, he has a knife", ["abuse"]),
        ("im scared he will kill me tonight", ["abuse"]),
        ("I'm scared the pain will kill me", []),
        ("my wife will kill me if I forget the milk again", []),
        # breathing that pauses and starts again near the end is expected
        ("mum stopped breathing for 20 seconds tonight then starts again with a big sigh", []),
        ("she's stopped breathing and her lips are blue", ["emergency"]),
        # session 9: wording of the dev sets' misses, reworded
        ("there are bruises in the shape of fingers on her arm after his visits", ["abuse"]),
        ("my stepson pins me down when I won't hand over my bank card", ["abuse"]),
        ("I think I've had about 10 of my oxynorm capsules since lunch", ["overdose"]),
        ("the toddler was sucking on one of grandma's old fentanyl patches", ["overdose"]),
        ("I no longer wish to go on living and I have made my choice", ["suicide"]),
        ("keep thinking about jumping from the multi-storey", ["suicide"]),
        ("we're thinking of jumping ship to another hospice", []),
        # a sudden change: "last week" told too does not make it over
        ("can't wake grandad, he was fine at lunch. The GP saw him last week", ["emergency"]),
        ("A few weeks ago dad accidentally took a double dose, the pharmacist sorted it", []),
        ("I've been killing myself trying to juggle work and his appointments", []),
        ("they pumped his stomach and now he says he'll do it properly next time", ["suicide"]),
        ("she's saved her tablets and says she's going to swallow the lot", ["suicide"]),
        ("my partner keeps forcing himself on me though I'm so ill from chemo", ["abuse"]),
        ("I doubled up on my hydromorphone and now my pupils are tiny", ["overdose"]),
        # session 10: wording of the fifth dev set's misses, reworded
        ("dad begs me to hold a pillow over his face so it's over", ["suicide"]),
        ("will my kids still get the insurance if I die by my own hand", ["suicide"]),
        ("grandad is on the kitchen floor jerking and foaming at the mouth", ["emergency"]),
        ("she has never had a seizure before and now she won't stop shaking", ["emergency"]),
        ("he drank the oramorph, the whole bottle is empty", ["overdose"]),
        ("I gave 5 ml instead of 0.5 ml of the morphine, I misread the syringe wrong",
         ["overdose"]),
        ("my nephew says he'll make sure I fall if I ring social services", ["abuse"]),
        ("her son told her no one would blame him if she fell down the stairs", ["abuse"]),
        ("nobody would blame me if I took a weekend off caring", []),
        ("I found him with a belt round his neck in the garage, he's breathing", ["suicide"]),
        ("he wears a scarf round his neck when we go out in the wheelchair", []),
        # the sixth dev set's misses, reworded
        ("every night I hope I won't wake up, and every morning I do", ["suicide"]),
        ("he's been googling how to overdose on his oxycodone", ["suicide"]),
        ("I'd like to go to sleep and never wake up, honestly", ["suicide"]),
        ("feels like an elephant sat on my chest and I'm sweating", ["emergency"]),
        ("she's numb from the waist down since this morning", ["emergency"]),
        ("he swallowed his whole week's dosette box in one go", ["overdose"]),
        ("the carer didn't take the old patch off before the new one, her pupils are pinpoint",
         ["overdose"]),
        ("my son threatens to finish her off if she tells the nurse", ["abuse"]),
        ("he hides my oxygen tubing when he's angry with me", ["abuse"]),
        ("she says if I don't hand over my pension card she'll stop coming", ["abuse"]),
        # a "not" in the sentence before does not negate the next one
        ("told the nurse I'm fine. I'm not. Been cutting my arms every night", ["suicide"]),
        # over, or a shop: no crisis
        ("he was in A&E with chest pain on Monday but it turned out to be heartburn", []),
        ("the grandson got into my pill organiser in January, poison control said he was "
         "totally fine. Which lockbox is best?", []),
        ("the pharmacy sold us a pill crusher for his morphine tablets", []),
        ("she is unconscious now but comfortable, the hospice nurse is with us", []),
        # scare quotes do not hide a pattern
        ("she said she'll make sure I 'trip' on the stairs if I ring the nurse", ["abuse"]),
        # over: the abuser gone; a scare checked; a usual dose a little early
        ("the carer who was stealing dad's tablets was sacked last year, how do we count them "
         "now?", []),
        ("after the chest pain scare last week (just indigestion) what should we watch for?", []),
        ("I gave mum her evening tablets early by mistake, just her usual ones, nothing extra",
         []),
        # expected, or asked about: the model decides
        ("we can't wake her now but the hospice nurse says it's expected", []),
        ("if they sedate him at the end, does that mean he won't wake up again?", []),
        # an idiom's words meant literally; a worry about pain, not about waking
        ("her boyfriend has threatened to finish her off if she tells the nurse", ["abuse"]),
        ("he threatens to finish me off if I ring my daughter", ["abuse"]),
        ("this chemo is going to finish me off, can palliative care help?", []),
        ("I hope she won't wake up in pain tonight, should we ask for a syringe driver?", []),
        # threats, money and medicines taken, told without the usual words
        ("my grandson says if I tell anyone he'll put me in a home", ["abuse"]),
        ("the cleaner says she'll 'forget' to come if I don't give her cash", ["abuse"]),
        ("my nephews took his tablets and money again", ["abuse"]),
        ("a carer told him to hurry up and die, he heard every word", ["abuse"]),
        ("her lodger makes her draw cash out at the bank every Friday", ["abuse"]),
        ("the night staff took her call bell away because she rings too much", ["abuse"]),
        ("my sister says not to waste the morphine on dad now", ["abuse"]),
        ("the home locks my aunt in her room at night", ["abuse"]),
        ("the bank sorted it back in 2024 when a carer took money from her account", []),
        # red flags in other words
        ("I can't feel my legs since this morning and my back is agony", ["emergency"]),
        ("is it normal not to feel your bottom when you wipe? back pain too", ["emergency"]),
        ("his throat is closing up and he's itchy all over after the new tablets",
         ["emergency"]),
        ("the baby has gone floppy and she's breathing so fast", ["emergency"]),
        ("the kitchen smells of gas and she's drowsy with a headache", ["emergency"]),
        # suicide and self-harm without the words
        ("I don't know what stops me next time", ["suicide"]),
        ("pressed the lighter against my arm again last night", ["suicide"]),
        ("I read that 30 of the amitriptyline would do it", ["suicide"]),
        ("when dad goes I'm going too", ["suicide"]),
        ("found him in the garage with the engine running", ["suicide"]),
        ("I've stopped eating on purpose so it's quicker", ["suicide"]),
        ("I keep hitting my own head when it gets too much", ["suicide"]),
        ("she wants me to leave the bottle so she can do the rest herself", ["suicide"]),
        ("I don't see why I should hang around for the worst of it", ["suicide"]),
        ("tonight's the night. goodbye everyone", ["suicide"]),
        ("I don't see why I should go on paying for the gym", []),
        # a vena cava blocked, someone hard to rouse, rough handling, locked in
        ("the veins on her neck are sticking out and her face and neck are swollen",
         ["emergency"]),
        ("I can barely wake him and his breathing is slow", ["emergency"]),
        ("her son grabbed her by the back of the neck at lunch", ["abuse"]),
        ("her husband locks the bedroom door from the outside", ["abuse"]),
        # over, a supply mistake, the news
        ("She had a bleed in October and brought up blood, but she's been absolutely fine "
         "since. Can she take ibuprofen?", []),
        ("the pharmacy gave us the wrong patches again, how do we complain?", []),
        ("Scary night last Tuesday: his lips went blue, but the nurse came and he's had a good "
         "week since. Is it normal to keep the oxygen up at night?", []),
        ("thanks for everything, tell the night team bye from me, won't need them after tonight",
         ["suicide"]),
        ("I saw a news story about carers stealing pain meds, how common is it?", []),
        # set 9: a bridge, a goodbye card, a dose "to not wake up", insulin, others' lives
        ("every night by the river I think how easy it'd be to just step off", ["suicide"]),
        ("he left a note with his son's number 'for when they find me'", ["suicide"]),
        ("how many of these patches to not wake up", ["suicide"]),
        ("been reading about exit bags all week, just wanted someone to know", ["suicide"]),
        ("how much insulin would kill someone who isn't diabetic", ["suicide"]),
        ("they would get their lives back if I just wasn't here", ["suicide"]),
        ("Could the morphine kill me if I take it every day?", []),
        # fever with shivers; a child and an opioid; stacked paracetamol; a stronger bottle
        ("temp of 39 since lunch and shivering under the duvet, chemo was last week",
         ["emergency"]),
        ("my 2 year old had a sip of nan's methadone, seems fine", ["overdose"]),
        ("cold and flu tablets on top of co-codamol, that's way too much paracetamol",
         ["overdose"]),
        ("the chemist gave us the concentrate instead of the usual oramorph and she's so drowsy",
         ["overdose"]),
        ("my son swallowed one of my tablets when he was a toddler, he's 12 now and fine", []),
        # money and medicines as leverage
        ("my nephew collects my pension and I never see a penny", ["abuse"]),
        ("he'll stop my morphine if I don't sign the house over", ["abuse"]),
        # history, a preference, a question asked for someone else
        ("Last year I was cutting myself a lot, but I've been clean eight months now", []),
        ("I'd rather die than go into a home, how do I put that in my care plan?", []),
        ("my teenage son asked me if people in hospices ever want to kill themselves", []),
        # asked about as a volunteer, not a person at risk
        ("Asking as a new volunteer: what do we say if a patient says they want to die?", []),
        # set 10: dictated messages, workers, illnesses beyond cancer
        ("how do I make it look like I died naturally so my family never knows", ["suicide"]),
        ("he says he's going to take the whole packet of diazepam when I'm at work",
         ["suicide"]),
        ("dad keeps asking me how to turn the ventilator off tonight", ["suicide"]),
        ("my son says he'll hold a pillow over my face if I don't give him my card", ["abuse"]),
        ("the staff tie him into his wheelchair with a belt all afternoon", ["abuse"]),
        ("her defibrillator has fired three times in ten minutes", ["emergency"]),
        ("he is having seizures one after another and not coming round", ["emergency"]),
        ("she can't feel her toes and the back pain is new", ["emergency"]),
        ("I think I gave him 5 ml instead of 5 mg of the oxycodone liquid", ["overdose"]),
        ("my little girl was sucking on my dad's old patch off the floor", ["overdose"]),
        ("the baby chewed on my mum's fentanyl patch, he seems fine, what's the poison control "
         "number?", ["overdose"]),                     # "seems fine" is not over: asking for help
        ("Dad's not actively dying, but he just had a seizure and won't wake up",
         ["emergency"]),                                # a negated "expected" is not expected
        ("they said to call back if it got worse i have since found the tramadol gone and he is "
         "snoring and i can not wake him", ["emergency"]),  # the "if" was long before
        ("My mother's ICD was switched off last week as we planned with the cardiologist", []),
        ("i do not want to go on a ventilator if my lungs get worse, how do i write that down",
         []),
        ("I'm writing a novel where my character hides her pills; how would a nurse notice?", []),
        ("Gave him a double dose of Oramorph by accident on Sunday, 111 said watch him, and he "
         "was back to himself by the evening. How do we avoid it?", []),
        ("When she was first diagnosed she said she wanted to die, but now she's planning "
         "holidays. How long do antidepressants take to work?", []),
    ],
)
def test_detector_reads_meaning_not_just_words(text: str, expected: list[str]) -> None:
    assert default_detector().classes(text) == expected


def test_every_number_a_reply_uses_exists_in_every_region() -> None:
    helplines = default_helplines()
    for region, numbers in helplines.numbers.items():
        assert helplines.placeholders() <= set(numbers), region
        for entry in numbers.values():
            assert entry["source"]["url"].startswith("https://")


@pytest.mark.parametrize(
    ("kinds", "region", "must_say"),
    [
        (["suicide"], "US", ["988", "911"]),
        (["suicide"], "UK", ["116 123", "999"]),
        (["emergency"], "US", ["911"]),
        (["emergency"], "UK", ["999"]),
        (["overdose"], "US", ["911", "1-800-222-1222"]),
        (["abuse"], "US", ["1-800-677-1116", "911"]),
        (["abuse"], "UK", ["safeguarding", "101", "999"]),
    ],
)
def test_crisis_reply_gives_the_numbers_for_the_region(
    kinds: list[str], region: str, must_say: list[str]
) -> None:
    text = default_helplines().crisis_reply(kinds, "en", region)
    assert all(s in text for s in must_say)
    other = {"US": ["999", "116 123"], "UK": ["911", "988"]}[region]
    assert not any(s in text for s in other)
    assert text.endswith("I'm still here if you want to keep talking.")


def test_hospice_patients_are_reminded_of_the_24_hour_nurse_line() -> None:
    text = default_helplines().crisis_reply(["emergency"], "en", "US", in_hospice=True)
    assert "24 hours" in text


def _message(text: str, intent: str, ranking: list[str]) -> Message:
    message = Message(data={"text": text})
    confidences = [0.9] + [0.1 / max(1, len(ranking) - 1)] * (len(ranking) - 1)
    message.set("intent", {"name": intent, "confidence": 0.9}, add_to_output=True)
    message.set("intent_ranking", [{"name": n, "confidence": c}
                                   for n, c in zip(ranking, confidences, strict=True)],
                add_to_output=True)
    return message


def test_override_beats_whatever_the_model_predicted() -> None:
    message = _message("what does hospice do? also i want to end my life", "faq", ["faq"])
    [message] = SafetyOverride().process([message])
    assert message.get("intent") == {"name": "crisis_suicide", "confidence": 1.0}
    entity = message.get("entities")[0]
    assert (entity["entity"], entity["value"]) == ("crisis_type", "suicide")


def test_model_crisis_guess_stands_unless_the_rules_cleared_the_message() -> None:
    kept = _message("I've written letters for the kids and kept back her tablets",
                    "crisis_suicide", ["crisis_suicide", "faq"])
    cleared = _message("I'm not suicidal, just tired", "crisis_suicide",
                       ["crisis_suicide", "thank"])
    SafetyOverride().process([kept, cleared])
    assert kept.get("intent")["name"] == "crisis_suicide"
    assert cleared.get("intent")["name"] == "thank"


def test_button_payloads_are_never_treated_as_crisis_words() -> None:
    message = _message('/faq{"faq_id":"last_days"}', "faq", ["faq"])
    [message] = SafetyOverride().process([message])
    assert message.get("intent")["name"] == "faq"



def test_model_crisis_mass_routes_indirect_wording_unless_cleared() -> None:
    def ranked(text: str) -> Message:
        message = Message(data={"text": text})
        ranking = [{"name": "crisis_suicide", "confidence": 0.4},
                   {"name": "faq", "confidence": 0.35},
                   {"name": "crisis_abuse", "confidence": 0.25}]
        message.set("intent", dict(ranking[0]), add_to_output=True)
        message.set("intent_ranking", ranking, add_to_output=True)
        return message

    indirect = ranked("once she's gone I've decided I'm going too")
    negated = ranked("I'm not suicidal, I'm just so tired")
    SafetyOverride({"model_threshold": 0.6}).process([indirect, negated])
    assert indirect.get("intent")["name"] == "crisis_suicide"
    assert negated.get("intent")["name"] == "faq"


def test_a_weak_crisis_guess_of_the_model_is_not_enough() -> None:
    message = Message(data={"text": "I'd kill for a full night's sleep"})
    ranking = [{"name": "crisis_suicide", "confidence": 0.35},
               {"name": "faq", "confidence": 0.3}, {"name": "greet", "confidence": 0.1}]
    message.set("intent", dict(ranking[0]), add_to_output=True)
    message.set("intent_ranking", ranking, add_to_output=True)
    SafetyOverride({"model_threshold": 0.6}).process([message])
    assert message.get("intent")["name"] == "faq"


# --- Issue 12: fewer false alarms from the rules, the right country's numbers (appended) ---

def _reply(text: str, crisis_mass: float = 0.0, kind: str = "crisis_suicide") -> str | None:
    """The reply a person would see for ``text`` when the model gives its crisis intents
    ``crisis_mass`` in all: the crisis action's text (numbers for the region the message
    tells), or None when the message is not routed as a crisis."""
    from navigator.evaluate import crisis_reply_for

    ranking = [{"name": kind, "confidence": crisis_mass},
               {"name": "faq", "confidence": 1.0 - crisis_mass}]
    ranking.sort(key=lambda i: -i["confidence"])
    message = Message(data={"text": text})
    message.set("intent", dict(ranking[0]), add_to_output=True)
    message.set("intent_ranking", ranking, add_to_output=True)
    [message] = SafetyOverride().process([message])
    parse = {"text": text, "intent": message.get("intent"),
             "entities": message.get("entities") or []}
    return crisis_reply_for(parse)


@pytest.mark.parametrize("text", [
    # a wish about where or how to die
    "Dad wants to die in his own bed at the farm. Who do we ring about care at home in Devon?",
    "Aunt wants to die in Scotland where she grew up. Can a hospice patient be moved that far?",
    "She wishes to die peacefully without more hospital trips. Can hospice honor that?",
    # a hypothetical, a question about the signs or the risk
    "What should I do if he stops breathing at home? He's on hospice and has a DNR",
    "Should she stop breathing during the night, do we ring the GP or wait till morning?",
    "what happens if dad takes his MST twice by accident? asking so i know for the future",
    "Is there a danger he might overdose on the patches if they're applied to broken skin?",
    "How do you give oramorph to someone who's unconscious? The nurse showed me but I forgot",
    # history, or a change the team has explained
    "My husband had a seizure when his tumour was first found but the meds have controlled "
    "them since. Is palliative care right for us?",
    "My grandfather choked on some food at Christmas and we had to do back blows. Soft food now?",
    "the hospice nurse says mum is unresponsive now and it won't be long. can she still hear us?",
    "dads been uncounsious a lot lately the hospice says its his cancer. how long do ppl stay "
    "like that",
    "I tried to take my own life 10 years ago and got help, I'm doing well now. Will that "
    "history affect my pain care?",
    "Our son took his own life in 2015 and now my husband has terminal cancer. Is there "
    "counselling for this?",
    # idioms
    "I'm dying to know whether the hospice allows dogs to visit",
    "I've had an overdose of information today, what is palliative care in simple words?",
    "I nearly had a heart attack when the bill arrived. Is hospice really free?",
    # abuse or suicide as a subject, not a report
    "What counts as elder abuse in Texas, legally?",
    "We're training new volunteers, what should they know about recognising neglect?",
    "Do the Samaritans only help people who are suicidal, or can carers call just to talk?",
    "Medicaid is threatening to cut mom's home care hours. Who can help us appeal?",
    "We used mom's savings to pay for her in-home care, will that affect Medicaid later?",
    "Mum keeps hiding her tablets in her cheek and spitting them out. How do we help her?",
])
def test_ordinary_messages_that_share_words_with_a_crisis_get_no_crisis_reply(text: str) -> None:
    assert default_detector().classes(text) == []
    assert _reply(text) is None


@pytest.mark.parametrize(("text", "must_say", "must_not_say"), [
    # an urgent word keeps what would otherwise read as a wish about the place
    ("I want to die in the river tonight, I'm standing by it now", ["988", "116 123"], []),
    # "not sure if" is not a hypothetical
    ("I'm not sure if he took too many of his morphine tablets, he's very sleepy and the "
     "packet is empty. We're in Leeds", ["999", "111"], ["911"]),
    ("it looks as if he has stopped breathing, we're in Phoenix AZ", ["911"], ["999"]),
    # something that happened before does not hide what is happening now
    ("she's been fine all day but just swallowed a whole packet of her sleeping tablets",
     ["911", "1-800-222-1222"], []),
    ("he's been sleeping a lot lately but now I can't wake him at all and his breathing is "
     "really shallow", ["911"], []),
    ("The nurse said he might get breathless but he's gasping for air and turning blue right "
     "now. Kent", ["999"], ["911"]),
])
def test_crises_worded_near_the_look_alikes_still_get_the_crisis_reply(
    text: str, must_say: list[str], must_not_say: list[str],
) -> None:
    reply = _reply(text)
    assert reply is not None
    assert all(s in reply for s in must_say), reply
    assert not any(s in reply for s in must_not_say), reply


def test_a_loss_to_suicide_is_left_to_the_model_which_still_routes_a_person_at_risk() -> None:
    """Another person's suicide told as a loss does not fire the rules, but it does not stop
    the classifier from routing a message that goes on to say the writer is at risk."""
    grief = "We lost my brother to suicide four years ago. Is there counselling for families?"
    risk = ("My dad took his own life in 2010 and lately I've been thinking of doing the same, "
            "I've got the pills")
    assert default_detector().classes(grief) == default_detector().classes(risk) == []
    assert _reply(grief, crisis_mass=0.05) is None
    assert "988" in (_reply(risk, crisis_mass=0.95) or "")


def test_an_idiom_stops_the_model_and_exasperation_needs_a_surer_model() -> None:
    assert _reply("I'd kill for a full night's sleep lol", crisis_mass=0.9) is None
    assert _reply("mum's going to kill me when she finds out I lost her glasses",
                  crisis_mass=0.9) is None
    assert _reply("feel like I've been hit by a bus after chemo", crisis_mass=0.9) is None
    assert _reply("my husband is going to kill me, he has a knife", crisis_mass=0.9) is not None
    assert _reply("the pharmacy is driving me up the wall", crisis_mass=0.6) is None
    assert _reply("the pharmacy is driving me up the wall and I want to disappear",
                  crisis_mass=0.95) is not None


def test_with_no_place_the_reply_gives_the_default_country_and_a_line_for_the_other() -> None:
    from actions.common import SETTINGS

    reply = _reply("Boston. I can't go on, I want to kill myself") or ""  # Boston: US or UK
    main, _, other = reply.partition("\n\nIf you are in ")
    own, others = {"US": (["988", "911"], ["116 123", "999"]),
                   "UK": (["116 123", "999"], ["988", "911"])}[SETTINGS.default_region]
    assert all(n in main for n in own) and not any(n in main for n in others)
    assert others[0] in other


def _long_question(sentence: dict | None) -> Message:
    message = Message(data={"text": "Quick question about the hospice bed. Also it is all too "
                                    "much and I have a plan for the weekend."})
    ranking = [{"name": "faq", "confidence": 0.8}, {"name": "crisis_suicide", "confidence": 0.2}]
    message.set("intent", dict(ranking[0]), add_to_output=True)
    message.set("intent_ranking", ranking, add_to_output=True)
    if sentence:
        message.set("crisis_sentence", sentence)
    return message


def test_one_crisis_sentence_in_a_long_message_routes_it_when_the_model_is_sure() -> None:
    sure = _long_question({"intent": "crisis_suicide", "confidence": 0.97, "sentence": 1})
    unsure = _long_question({"intent": "crisis_suicide", "confidence": 0.6, "sentence": 1})
    none = _long_question(None)
    SafetyOverride({"sentence_threshold": 0.9}).process([sure, unsure, none])
    assert sure.get("intent")["name"] == "crisis_suicide"
    assert [m.get("intent")["name"] for m in (unsure, none)] == ["faq", "faq"]


def test_a_crisis_told_in_passing_inside_a_long_question_gets_the_crisis_reply(
    trained_model,
) -> None:
    """Through the trained pipeline: the whole message reads as a question about equipment,
    one of its sentences is a carer's plan to end their life."""
    import asyncio

    from navigator.evaluate import _parse_all

    text = ("Hi, we are sorting out a hospital bed and a commode for my husband at home. The "
            "district nurse is coming on Tuesday. Honestly I don't want to be around after he's "
            "gone, I've decided how I'll do it. Do we need to pay for the bed?")
    assert default_detector().classes(text) == []  # no rule: the model's sentence check
    [parse], _ = asyncio.run(_parse_all(trained_model, [text]))
    assert parse["intent"]["name"] == "crisis_suicide"
    assert parse["crisis_sentence"]["sentence"] == 2


def _ranked(text: str, crisis_weight: float) -> Message:
    message = Message(data={"text": text})
    ranking = [{"name": "faq", "confidence": 1 - crisis_weight},
               {"name": "crisis_emergency", "confidence": crisis_weight}]
    message.set("intent", dict(ranking[0]), add_to_output=True)
    message.set("intent_ranking", ranking, add_to_output=True)
    return message


def test_an_ambiguous_crisis_word_counts_only_when_the_model_gives_some_crisis_weight() -> None:
    """"Overdose" alone is as often a question about overdoses as an overdose."""
    question = _ranked("What would a morphine overdose look like, so I can tell it from sleep?",
                       0.05)
    now = _ranked("I think mum has taken an overdose, she is very sleepy", 0.3)
    assert default_detector().classes(question.get("text")) == []
    SafetyOverride({"weak_threshold": 0.2}).process([question, now])
    assert question.get("intent")["name"] == "faq"
    assert now.get("intent")["name"] == "crisis_emergency"
    assert [e["value"] for e in now.get("entities")] == ["overdose"]


@pytest.mark.parametrize(("text", "kind"), [
    ("he gave his grandson his fishing rods and said he won't need them where he's going",
     "suicide"),
    ("she's been putting her tablets aside in a drawer for weeks", "suicide"),
    ("he asked me where I keep the shotgun cartridges", "suicide"),
    ("I'll go to the top floor of the multi-storey car park, I can't live without her",
     "suicide"),
    ("she can't move her left leg since this afternoon", "emergency"),
    ("his catheter has not drained since the morning", "emergency"),
    ("I gave her two paracetamol not realising she'd had co-codamol", "overdose"),
    ("my stepson had her will changed last month", "abuse"),
    ("her tablets are going down faster than she takes them", "abuse"),
    ("grandad wants me to pick him up a length of rope on the way over", "suicide"),
    ("what's the quickest way to go with my lungs like this, I have all my tablets", "suicide"),
    ("I've worked out the date I'll go, it's after the wedding", "suicide"),
    ("she pressed the button on the pump every few minutes overnight", "overdose"),
    ("they gave him the same ml as his old morphine but this is the strong one", "overdose"),
    ("every time I visit he's sitting in a soaked pad", "abuse"),
    ("she looks blue round the lips", "emergency"),
])
def test_ambiguous_wording_is_a_weak_match_that_needs_the_model(text: str, kind: str) -> None:
    """Each of these is often a crisis and sometimes not: a weak match, never a route alone."""
    found = default_detector().analyse(text)
    assert found.hits == [] and kind in {hit.kind for hit in found.weak}


def test_a_past_event_elsewhere_in_the_message_leaves_an_ambiguous_word_to_the_model() -> None:
    """A death told in passing does not clear "legs feel numb": the model decides, as it would
    with no rule at all (a strong match in the same place is still cleared)."""
    text = "Both her legs feel numb and heavy. Her mum died of the same cancer."
    found = default_detector().analyse(text)
    assert (found.cleared, found.deferred, found.weak) == (0, 1, ())
    sure, unsure = _ranked(text, 0.6), _ranked(text, 0.1)
    SafetyOverride().process([sure, unsure])
    assert sure.get("intent")["name"] == "crisis_emergency"
    assert unsure.get("intent")["name"] == "faq"
    strong = default_detector().analyse("She can't feel her feet. Her mum died of the same cancer.")
    assert (strong.cleared, strong.hits) == (1, [])


def test_the_model_alone_does_not_route_an_event_told_as_over_unless_something_is_happening_now(
) -> None:
    """The outcome check (``outcome`` in safety_patterns.yml): the model's crisis guess is held
    back (so is a weak word's) when the message says the event is over, explained or
    expected, and nothing is said to be happening now; the rules' own matches still count."""
    over = [
        "Dad choked on a bit of toast yesterday but coughed it up straight away. Should we cut "
        "his food up smaller?",
        "Mum had a fall last month, the paramedics checked her over and the scan was clear. Can "
        "we get grab rails fitted?",
        "He's not really responding today. The hospice nurse says it's expected and he looks "
        "peaceful. How long might this last?",
        "She had a fit a few weeks back and has been seizure-free on the new tablets. Can she "
        "fly to see her sister?",
        "I'm exhausted but honestly okay, just wanted somewhere to say it. Thanks for listening.",
    ]
    for text in over:
        assert _reply(text, crisis_mass=0.9, kind="crisis_emergency") is None, text
    happening = [
        "He coughed it up last night but now he's choking again and going grey",
        "He'd been fine since the fall but tonight he's confused and very drowsy",
        "I told the nurse I'm fine now but I'm not, I keep thinking everyone would be better "
        "off",
        # a loss told as history does not hide a wish now
        "My husband died in 2019 and I want to be with him",
        "Mum passed two years ago, now I can't see the point of anything",
    ]
    for text in happening:
        assert _reply(text, crisis_mass=0.9) is not None, text

"""The semantic guards, one group per kind of near miss, plus the positives they must let by."""

from __future__ import annotations

import pytest

from headway.cache.guards import check, features, same_words, split_payload


def veto(a: str, b: str) -> str | None:
    first = check(features(a), features(b))
    assert first == check(features(b), features(a)), "guards must be symmetric"
    return first


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Can I return items that have been opened?",
            "Can I return items that have not been opened?",
        ),
        ("What can't I eat before a blood test?", "What can I eat before a blood test?"),
        ("Which plans never expire?", "Which plans expire?"),
        ("Do trains to Bern run on Sunday?", "Don't trains to Bern run on Sunday?"),
    ],
)
def test_negation(a: str, b: str) -> None:
    assert veto(a, b) == "negation"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Convert 50 USD to EUR.", "Convert 5 USD to EUR."),
        ("Undo the last commit in git.", "Undo the last 3 commits in git."),
        ("What is the 10th Fibonacci number?", "What is the 12th Fibonacci number?"),
        ("How many days are in February 2024?", "How many days are in February 2023?"),
        ("Split the bill three ways.", "Split the bill 4 ways."),
        ("Is Python 2 still supported?", "Is Python 3 still supported?"),
    ],
)
def test_number(a: str, b: str) -> None:
    assert veto(a, b) == "number"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I convert PNG to JPG?", "How do I convert JPG to PNG?"),
        ("Convert 25 km/h to meters per second.", "Convert 25 meters per second to km/h."),
        ("Is K2 taller than Mount Everest?", "Is Mount Everest taller than K2?"),
        (
            "How do I rebase main onto my feature branch?",
            "How do I rebase my feature branch onto main?",
        ),
        ("Is a rectangle a square?", "Is a square a rectangle?"),
        (
            "Translate the menu from French into German",
            "Translate the menu from German into French",
        ),
    ],
)
def test_direction(a: str, b: str) -> None:
    assert veto(a, b) == "direction"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "How do I increase the font size in VS Code?",
            "How do I decrease the font size in VS Code?",
        ),
        ("How do I uninstall Homebrew on macOS?", "How do I install Homebrew on macOS?"),
        ("Round 7.6 down to the nearest integer.", "Round 7.6 up to the nearest integer."),
        ("How do I opt out of the pension scheme?", "How do I opt in to the pension scheme?"),
        ("Can I fly with a power bank?", "Can I fly without a power bank?"),
        ("How do I lock my card?", "How do I unlock my card?"),
    ],
)
def test_antonym(a: str, b: str) -> None:
    assert veto(a, b) == "antonym"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the capital of Austria?", "What is the capital of Australia?"),
        ("How do I write a unit test with pytest?", "How do I write a unit test with Jest?"),
        ("How do I return an item?", "How do I exchange an item?"),
        (
            "What's the height of the Empire State Building?",
            "What's the height of the Eiffel Tower?",
        ),
        ("What's the population of Sweden?", "What's the population of Switzerland?"),
    ],
)
def test_entity_or_substitution(a: str, b: str) -> None:
    assert veto(a, b) in ("substitution", "entity")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I update one npm package?", "How do I update all npm packages?"),
        ("What's on my calendar today?", "What's on my calendar this week?"),
        ("How do I mute all participants in Zoom?", "How do I mute one participant in Zoom?"),
    ],
)
def test_scope(a: str, b: str) -> None:
    assert veto(a, b) in ("scope", "number")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Classify the sentiment: The food was great.",
            "Classify the sentiment: The food was cold.",
        ),
        ("Reverse the word: stressed", "Reverse the word: drawer"),
        ("Is this correct? 'They're going.'", "Is this correct? 'Their going.'"),
        (
            "What language is this? Goedemorgen, hoe gaat het?",
            "What language is this? Guten Morgen, wie geht's?",
        ),
    ],
)
def test_extraction_payload(a: str, b: str) -> None:
    assert veto(a, b) == "payload"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Tell me more.", "Can you tell me more?"),
        ("Does it work offline?", "Does the Notes app work offline?"),
        ("And in French?", "How do you say hello in French?"),
        ("Use a list comprehension instead.", "Rewrite it using a list comprehension instead."),
        ("What about the second one?", "What about the first one?"),
        ("Is there a vegetarian version?", "Is there a vegetarian version of that recipe?"),
    ],
)
def test_followup(a: str, b: str) -> None:
    assert veto(a, b) == "followup"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Why can't I add items to my cart?", "Why can I not add items to my cart?"),
        (
            "Hi! Quick question please: what is the return window for shoes?",
            "What is the return window for shoes?",
        ),
        ("how do i reslove a merge confilct in git", "How do I resolve a merge conflict in git?"),
        (
            "In JavaScript, how do I check if a key exists in an object?",
            "How do I check if a key exists in an object in JavaScript?",
        ),
        ("How do I halt a running Docker container?", "How do I stop a running Docker container?"),
        ("Find the square root of one hundred forty-four.", "What's the square root of 144?"),
        (
            "Is it safe to drink herbal tea while pregnant?",
            "While pregnant, is it safe to drink herbal tea?",
        ),
        ("Translate 'good luck' into German.", "Please translate 'good luck' into German. Thanks!"),
        (
            "Summarize this email: Bring laptops.",
            "Could you please summarize this email for me? Bring laptops.",
        ),
    ],
)
def test_positives_pass(a: str, b: str) -> None:
    assert veto(a, b) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is it safe to eat raw eggs?", "Is it safe to eat raw eggs during pregnancy?"),
        ("What's the largest city?", "What's the largest city in Texas?"),
    ],
)
def test_added_qualifier_narrows_the_question(a: str, b: str) -> None:
    assert veto(a, b) == "scope"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How do I change my email address?", "How can I update the email address on my account?"),
        ("Why is my laptop battery draining fast?", "Why does my laptop battery drain quickly?"),
        ("Where can I find my order number?", "Where do I find my order number?"),
    ],
)
def test_unseen_positives_pass(a: str, b: str) -> None:
    assert veto(a, b) is None


def test_same_words_tolerates_spelling_and_order_only() -> None:
    assert same_words(
        features("how do i aply a discont code at checkout"),
        features("How do I apply a discount code at checkout?"),
    )
    assert not same_words(
        features("How do I apply a code?"), features("How do I apply a coupon code at checkout?")
    )


def test_payload_split() -> None:
    assert (
        split_payload("Extract the country from: She was born in Austria.")[1]
        == "she was born in austria"
    )
    assert split_payload("Hey, quick question: what is 2+2?")[1] is None  # filler before the colon
    assert split_payload("Why was my card declined? Thanks.")[1] is None

"""Literal title matching for the recovery metric (recinterp.textmatch)."""
import pytest

from recinterp.textmatch import count_titles_found, found_titles, is_title, normalize_text


def test_empty_inputs_give_zero():
    assert count_titles_found("", ["Heat"]) == 0
    assert count_titles_found("   ", ["Heat"]) == 0
    assert count_titles_found("Heat", []) == 0
    assert found_titles("", ["Heat", "Babe"]) == [False, False]
    assert found_titles(None, ["Heat"]) == [False]


def test_one_string_instead_of_a_list_is_rejected():
    with pytest.raises(TypeError, match="list of strings"):
        found_titles("Heat", "Heat")


def test_case_insensitive_and_repeated_mentions_count_once():
    text = "The user watched HEAT, then heat again, and Babe."
    assert found_titles(text, ["Heat", "Babe", "Fargo"]) == [True, True, False]
    assert count_titles_found(text, ["Heat", "Babe", "Fargo"]) == 2


def test_word_boundaries():
    assert count_titles_found("I loved Heathers.", ["Heat"]) == 0
    assert count_titles_found("Preheat the oven", ["Heat"]) == 0
    assert count_titles_found("Heat's ending", ["Heat"]) == 1
    assert count_titles_found("(Heat)", ["Heat"]) == 1
    # Digits are word characters: "Alien" is not inside "Alien3" (NFKC turns "³" into "3").
    assert count_titles_found("Alien³ was dark", ["Alien"]) == 0


def test_regex_metacharacters_are_literal():
    titles = ["Seven (Se7en) (1995)", "What's Eating Gilbert Grape? (1993)", "C++ for Dummies",
              "M*A*S*H (1970)", "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)"]
    text = ("seven (se7en); what's eating gilbert grape?; C++ for dummies; m*a*s*h; "
            "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb")
    assert found_titles(text, titles) == [True] * 5
    # As regexes these would match the strings below; as literals they must not.
    assert count_titles_found("seven se7en", ["Seven (Se7en)"]) == 0
    assert count_titles_found("what's eating gilbert grap", ["What's Eating Gilbert Grape?"]) == 0
    assert count_titles_found("c for dummies", ["C++ for Dummies"]) == 0
    assert count_titles_found("mmmash", ["M*A*S*H"]) == 0
    assert count_titles_found("drX strangelove", ["Dr. Strangelove"]) == 0


def test_titles_are_normalised_like_targets():
    # Year dropped, article moved to the front, as recinterp.data.titles.normalize_title does.
    assert count_titles_found("They watched The Usual Suspects twice.", ["Usual Suspects, The (1995)"]) == 1
    assert count_titles_found("Il Postino is lovely", ["Postino, Il (1994)"]) == 1
    # The raw spelling still counts when the model writes it verbatim.
    assert count_titles_found("usual suspects, the (1995)", ["Usual Suspects, The (1995)"]) == 1
    # Years inside the free text are not stripped, and do not prevent a match.
    assert count_titles_found("Heat (1995), Babe (1995)", ["Heat (1995)", "Babe (1995)"]) == 2


def test_non_ascii_quotes_dashes_and_trademarks():
    assert count_titles_found("AMÉLIE and Rendez-vous", ["Amélie", "Rendez-vous"]) == 2
    # Decomposed "e" + combining accent equals the composed letter after NFKC.
    assert count_titles_found("Ame\u0301lie", ["Amélie"]) == 1
    assert count_titles_found("Amelie", ["Amélie"]) == 0  # accents are not stripped: literal
    assert count_titles_found("Rendez\u2013vous", ["Rendez-vous"]) == 1  # en dash
    assert count_titles_found("Schindler\u2019s List", ["Schindler's List (1993)"]) == 1
    assert count_titles_found("Gumboy - Crazy Adventures", ["Gumboy - Crazy Adventures\u2122"]) == 1
    assert count_titles_found("Civilization IV: Warlords", ["Civilization IV\u00ae: Warlords"]) == 1
    assert count_titles_found("Straße", ["STRASSE"]) == 1  # casefold, not lower
    assert normalize_text("  A\u00a0 b\n\tC ") == "a b c"


def test_shorter_true_title_inside_a_longer_one_is_not_credited():
    assert found_titles("I watched Aliens.", ["Alien (1979)", "Aliens (1986)"]) == [False, True]
    assert found_titles("Toy Story 2 was fun", ["Toy Story (1995)", "Toy Story 2 (1999)"]) == [False, True]
    assert found_titles("Die Hard: With a Vengeance", ["Die Hard", "Die Hard: With a Vengeance"]) == [False, True]
    # A separate mention of the shorter title still counts.
    assert found_titles("Toy Story 2, then Toy Story", ["Toy Story", "Toy Story 2"]) == [True, True]
    assert found_titles("toy story 2 toy story 2", ["Toy Story", "Toy Story 2"]) == [False, True]
    # Order of the list does not matter.
    assert found_titles("Toy Story 2 was fun", ["Toy Story 2", "Toy Story"]) == [True, False]
    # Without the longer title among the true ones, the prefix is (literally) present.
    assert found_titles("Alien: Resurrection", ["Alien"]) == [True]


def test_duplicate_titles_get_the_same_answer():
    assert found_titles("Heat", ["Heat (1995)", "Heat", "Babe"]) == [True, True, False]
    assert count_titles_found("Heat", ["Heat", "Heat"]) == 2


def test_count_is_bounded_by_the_list():
    titles = [f"Movie {i}" for i in range(10)]
    text = ", ".join(titles) + " and Movie 1 again"
    assert count_titles_found(text, titles) == 10
    assert count_titles_found("Movie 10", titles[:2]) == 0  # "Movie 1" is not inside "Movie 10"


def test_an_exact_answer_is_the_title_in_the_same_comparison_form_as_a_hit():
    assert is_title("The  Usual\nSUSPECTS", "The Usual Suspects")  # case and space
    assert is_title("The Usual Suspects", "Usual Suspects, The (1995)")  # normalised like the targets
    assert is_title("Usual Suspects, The (1995)", "Usual Suspects, The (1995)")  # the raw spelling counts too
    assert is_title("Half\u2013Life 2", "Half-Life 2")  # dashes unified, as for a hit
    assert not is_title("The Usual Suspects is the answer", "The Usual Suspects")  # a hit, not exact
    assert not is_title("", "Heat")

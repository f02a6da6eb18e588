"""Tests of inpaint_aug.prompts: the prompt book format, rendering and every error message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inpaint_aug.dataset.prompts import ClassPrompt, PromptProblems, load_prompts, parse_prompts
from inpaint_aug.errors import PromptError

ROOT = Path(__file__).resolve().parents[1]

# The example of the feature request (README "What goes in"), verbatim.
ISSUE_YAML = """\
vars:                          # global placeholder values
  light: [daylight, overcast, evening light]
default:                       # classes not listed under `classes`
  prompt: "a photo of a {name}, {light}"      # {name} = the category name
  negative: "blurry, deformed, low quality"
classes:
  car:
    prompt: ["a {color} {body} car, {light}", "a photo of a {color} car"]
    vars: {color: [red, blue, white], body: [sedan, hatchback]}
    strength: 0.9               # also: guidance, steps (these beat the command-line values)
  person:
    skip: true                  # never redrawn; its labels are still carried over
  7:                            # a category id: for datasets with duplicated category names
    prompt: "a {name}"
"""
CATEGORIES = {1: "car", 2: "person", 7: "bicycle", 9: "dog"}


def book_from(tmp_path: Path, text: str, categories=None):
    path = tmp_path / "prompts.yaml"
    path.write_text(text, encoding="utf-8")
    return load_prompts(path, CATEGORIES if categories is None else categories)


def error_of(tmp_path: Path, text: str, categories=None) -> str:
    with pytest.raises(PromptError) as err:
        book_from(tmp_path, text, categories)
    message = str(err.value)
    assert message.startswith(str(tmp_path / "prompts.yaml") + ":"), message  # names the file
    return message


# --- the issue's example ---------------------------------------------------------------------


def test_issue_example_parses(tmp_path):
    book = book_from(tmp_path, ISSUE_YAML)
    car, person, bicycle, dog = (book.spec(i) for i in (1, 2, 7, 9))
    assert car.prompts == ("a {color} {body} car, {light}", "a photo of a {color} car")
    assert car.strength == 0.9 and car.guidance is None and car.steps is None
    assert car.negatives == ("blurry, deformed, low quality",)  # inherited from default
    assert car.vars == {
        "light": ("daylight", "overcast", "evening light"),
        "color": ("red", "blue", "white"),
        "body": ("sedan", "hatchback"),
    }
    assert person.skip is True
    assert bicycle.prompts == ("a {name}",) and not bicycle.skip  # addressed by id 7
    assert bicycle.negatives == ("blurry, deformed, low quality",)
    assert dog.prompts == ("a photo of a {name}, {light}",)  # unlisted: the default
    assert dog.strength is None


def test_issue_example_renders(tmp_path):
    book = book_from(tmp_path, ISSUE_YAML)
    cars = {book.render(1, seed) for seed in range(200)}
    pattern = re.compile(
        r"a (red|blue|white) (sedan|hatchback) car, (daylight|overcast|evening light)"
        r"|a photo of a (red|blue|white) car"
    )
    assert all(pattern.fullmatch(p) and n == "blurry, deformed, low quality" for p, n in cars)
    assert len({p for p, _ in cars}) >= 10  # the choices really vary
    assert book.render(7, 0) == ("a bicycle", "blurry, deformed, low quality")
    prompt, _ = book.render(9, 3)
    assert re.fullmatch(r"a photo of a dog, (daylight|overcast|evening light)", prompt)


def test_bundled_sample_prompts_load():
    book = load_prompts(
        ROOT / "datasets" / "shapes" / "prompts.yaml", {1: "circle", 3: "square", 7: "triangle"}
    )
    assert book.spec(7).skip and book.spec(3).guidance == 6.0 and book.spec(1).strength == 0.9


@pytest.mark.parametrize("seed", [0, 1, 17, 2**31 - 1])
def test_render_is_deterministic_per_seed(tmp_path, seed):
    a = book_from(tmp_path, ISSUE_YAML)
    b = book_from(tmp_path, ISSUE_YAML)
    assert a.render(1, seed) == b.render(1, seed) == a.render(1, seed)


def test_render_varies_across_seeds(tmp_path):
    book = book_from(tmp_path, ISSUE_YAML)
    assert len({book.render(1, seed) for seed in range(50)}) > 5
    assert len({book.render(9, seed)[0] for seed in range(50)}) == 3  # every light is used


def test_render_fills_name_and_keeps_escaped_braces(tmp_path):
    book = book_from(
        tmp_path, "default:\n  prompt: 'a {name} in {{braces}}'\n  negative: 'no {name}'\n"
    )
    assert book.render(9, 0) == ("a dog in {braces}", "no dog")
    assert book.render(2, 0) == ("a person in {braces}", "no person")


def test_parse_prompts_docstring_example():
    book = parse_prompts({"default": {"prompt": "a {name}"}}, "p.yaml", {1: "cat"})
    assert book.render(1, seed=0) == ("a cat", "")
    assert book.path == "p.yaml" and book.names == {1: "cat"}


# --- coverage of classes ---------------------------------------------------------------------


def test_no_default_leaves_unlisted_classes_without_spec(tmp_path):
    book = book_from(tmp_path, "classes:\n  car: {prompt: 'a car'}\n")
    assert book.spec(1) == ClassPrompt(prompts=("a car",))
    assert book.spec(2) is None and book.spec(7) is None and book.spec(9) is None
    assert set(book.by_category) == {1}


def test_skip_without_prompt_and_without_default(tmp_path):
    book = book_from(tmp_path, "classes:\n  person: {skip: true}\n")
    assert book.spec(2).skip and book.spec(2).prompts == ()
    assert book.spec(1) is None


def test_class_settings_override_default_settings(tmp_path):
    text = (
        "default: {prompt: 'a {name}', strength: 0.5, guidance: 3, steps: 10}\n"
        "classes:\n  car: {steps: 30, negative: [ugly, bad]}\n"
    )
    book = book_from(tmp_path, text)
    car, dog = book.spec(1), book.spec(9)
    assert (car.strength, car.guidance, car.steps) == (0.5, 3.0, 30)
    assert car.negatives == ("ugly", "bad") and car.prompts == ("a {name}",)
    assert (dog.strength, dog.guidance, dog.steps) == (0.5, 3.0, 10)


def test_class_vars_override_global_vars(tmp_path):
    text = "vars: {c: [red]}\ndefault: {prompt: '{c} {name}'}\nclasses:\n  car: {vars: {c: blue}}\n"
    book = book_from(tmp_path, text)
    assert book.render(1, 0)[0] == "blue car" and book.render(9, 0)[0] == "red dog"


def test_numbers_in_var_lists_become_strings(tmp_path):
    book = book_from(tmp_path, "vars: {n: [1, 2.5]}\ndefault: {prompt: '{n} {name}'}\n")
    assert book.spec(1).vars == {"n": ("1", "2.5")}


def test_empty_file_sections(tmp_path):
    book = book_from(tmp_path, "vars:\ndefault: {prompt: 'x'}\nclasses:\n")
    assert book.spec(1).prompts == ("x",) and book.spec(1).vars == {}


# --- duplicated names and ids ----------------------------------------------------------------

DUPLICATED = {1: "car", 4: "car", 5: "bus"}


def test_duplicated_name_must_be_addressed_by_id(tmp_path):
    message = error_of(tmp_path, "classes:\n  car: {prompt: 'a car'}\n", DUPLICATED)
    assert "classes.car" in message and "2 categories named 'car'" in message
    assert "ids [1, 4]" in message and "by its id" in message


def test_duplicated_name_addressed_by_integer_ids(tmp_path):
    text = "classes:\n  1: {prompt: 'a red car'}\n  4: {prompt: 'a toy car'}\n"
    book = book_from(tmp_path, text, DUPLICATED)
    assert book.render(1, 0)[0] == "a red car" and book.render(4, 0)[0] == "a toy car"
    assert book.spec(5) is None


def test_duplicated_name_covered_by_default(tmp_path):
    book = book_from(tmp_path, "default: {prompt: 'a {name}'}\n", DUPLICATED)
    assert book.render(4, 0)[0] == "a car"


def test_integer_key_that_is_not_an_id_is_a_name(tmp_path):
    book = book_from(tmp_path, "classes:\n  2024: {prompt: 'model {name}'}\n", {1: "2024"})
    assert book.render(1, 0)[0] == "model 2024"


# --- errors: each names the file and the key -------------------------------------------------


@pytest.mark.parametrize(
    "text,parts",
    [
        pytest.param(
            "default:\n  prompt: 'a {name}\n",
            ["invalid YAML at line", "column"],
            id="unclosed-quote",
        ),
        pytest.param("classes: [a, b\n", ["invalid YAML at line 2, column 1"], id="unclosed-list"),
        pytest.param("a: b: c\n", ["invalid YAML at line 1, column 5"], id="mapping-in-scalar"),
        pytest.param("- a\n- b\n", ["expected a mapping", "got list"], id="top-list"),
        pytest.param("", ["expected a mapping", "got an empty file"], id="empty-file"),
        pytest.param("# only a comment\n", ["got an empty file"], id="comments-only"),
        pytest.param(
            "default: {prompt: x}\npromts: {}\n",
            ["unknown top-level key(s) ['promts']", "['background', 'classes', 'default', 'vars']"],
            id="unknown-top-key",
        ),
        pytest.param(
            "classes:\n  cat: {prompt: x}\n",
            ["classes.cat", "no category of that name", "bicycle, car, dog, person"],
            id="unknown-class",
        ),
        pytest.param(
            "classes:\n  car: {prompt: 'a {colour} car'}\n",
            ["classes.car", "placeholder {colour}", "not defined", "'name'"],
            id="undefined-placeholder",
        ),
        pytest.param(
            "default: {prompt: x, negative: 'not {good}'}\n",
            ["default", "placeholder {good}"],
            id="undefined-placeholder-in-negative",
        ),
        pytest.param(
            "classes:\n  car: {prompt: 'a {0} car'}\n",
            ["classes.car", "placeholder {0}"],
            id="positional",
        ),
        pytest.param(
            "classes:\n  car: {prompt: 'a {} car'}\n",
            ["classes.car", "placeholder {}"],
            id="empty-field",
        ),
        pytest.param(
            "classes:\n  car: {prompt: 'a {name car'}\n",
            ["classes.car", "bad template"],
            id="unbalanced",
        ),
        pytest.param(
            "classes:\n  car: {prompt: []}\n",
            ["classes.car.prompt", "non-empty list of strings"],
            id="empty-prompt-list",
        ),
        pytest.param(
            "classes:\n  car: {prompt: [a, {x: 1}]}\n",
            ["classes.car.prompt holds"],
            id="prompt-mapping",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, strength: high}\n",
            ["classes.car.strength is 'high'", "0 < strength <= 1"],
            id="strength-string",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, strength: 0}\n",
            ["classes.car.strength is 0"],
            id="strength-0",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, strength: 1.5}\n",
            ["classes.car.strength is 1.5"],
            id="strength-1.5",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, strength: true}\n",
            ["classes.car.strength is True"],
            id="strength-bool",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, guidance: -1}\n",
            ["classes.car.guidance is -1"],
            id="guidance-negative",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, steps: 0}\n",
            ["classes.car.steps is 0", "integer 1..1000"],
            id="steps-0",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, steps: 2.5}\n",
            ["classes.car.steps is 2.5"],
            id="steps-2.5",
        ),
        pytest.param(
            "default: {prompt: x, steps: '20'}\n", ["default.steps is '20'"], id="steps-string"
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, skip: 'yes'}\n",
            ["classes.car.skip must be true or false, got 'yes'"],
            id="skip-string",
        ),
        pytest.param("vars: [a, b]\n", ["vars must be a mapping"], id="vars-list"),
        pytest.param(
            "vars: []\ndefault: {prompt: x}\n", ["vars must be a mapping"], id="vars-empty-list"
        ),
        pytest.param("vars: 0\ndefault: {prompt: x}\n", ["vars must be a mapping"], id="vars-zero"),
        pytest.param("vars: light\n", ["vars must be a mapping"], id="vars-string"),
        pytest.param(
            "vars: {light: []}\n",
            ["vars.light must be a string or a non-empty list"],
            id="var-empty",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, vars: [red]}\n",
            ["classes.car.vars must be a mapping"],
            id="class-vars-list",
        ),
        pytest.param(
            "classes:\n  car: {prompt: x, vars: []}\n",
            ["classes.car.vars must be a mapping"],
            id="class-vars-empty",
        ),
        pytest.param("classes: [car]\n", ["'classes' must be a mapping"], id="classes-list"),
        pytest.param("classes: []\n", ["'classes' must be a mapping"], id="classes-empty-list"),
        pytest.param(
            "classes:\n  car: {strength: 0.5}\n",
            ["classes.car needs a 'prompt' (or 'skip: true')"],
            id="class-without-prompt-no-default",
        ),
        pytest.param(
            "default: {negative: x}\nclasses:\n  car: {strength: 0.5}\n",
            ["classes.car needs a 'prompt'", "(the default has no prompt)"],
            id="class-without-prompt-default-without-prompt",
        ),
        pytest.param("classes:\n  car:\n", ["classes.car needs a 'prompt'"], id="class-empty"),
        pytest.param(
            "classes:\n  car: {prompt: x, prompts: y}\n",
            ["classes.car: unknown key(s) ['prompts']"],
            id="unknown-class-key",
        ),
        pytest.param(
            "classes:\n  car: a car\n", ["classes.car must be a mapping"], id="class-string"
        ),
        pytest.param(
            "classes:\n  yes: {prompt: x}\n",
            ["classes.True", "boolean", "quote the class name"],
            id="yaml-bool-key",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, parts):
    message = error_of(tmp_path, text)
    for part in parts:
        assert part in message, (part, message)


def test_missing_file(tmp_path):
    with pytest.raises(PromptError, match="file not found") as err:
        load_prompts(tmp_path / "nope.yaml", CATEGORIES)
    assert str(tmp_path / "nope.yaml") in str(err.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"default: {prompt: '\xff'}\n")
    with pytest.raises(PromptError, match="cannot read the file"):
        load_prompts(path, CATEGORIES)


def test_quoted_boolean_word_addresses_the_class(tmp_path):
    book = book_from(tmp_path, "classes:\n  'yes': {prompt: 'a {name}'}\n", {1: "no", 2: "yes"})
    assert book.spec(2).prompts == ("a {name}",) and book.spec(1) is None


# --- a default without a prompt (a shared negative) ------------------------------------------


def test_default_with_only_a_negative_is_inherited_by_listed_classes(tmp_path):
    text = (
        "default:\n  negative: 'blurry, {light}'\n  strength: 0.8\n"
        "vars: {light: [dim]}\n"
        "classes:\n  car: {prompt: 'a {name}'}\n  person: {skip: true}\n"
    )
    book = book_from(tmp_path, text)
    car = book.spec(1)
    assert car.prompts == ("a {name}",) and car.negatives == ("blurry, {light}",)
    assert car.strength == 0.8 and book.render(1, 0) == ("a car", "blurry, dim")
    assert book.spec(2).skip
    assert book.spec(7) is None and book.spec(9) is None, "unlisted classes have no prompt"
    assert set(book.by_category) == {1, 2}


def test_a_skip_default_still_skips_unlisted_classes(tmp_path):
    book = book_from(tmp_path, "default: {skip: true}\nclasses:\n  car: {prompt: x}\n")
    assert book.spec(9).skip and book.spec(7).skip and book.spec(1).prompts == ("x",)


# --- every problem, in one error -------------------------------------------------------------

MANY = """\
vars: {light: []}
promts: {}
default: {prompt: 'a {hue} {name}', strength: 2}
classes:
  cat: {prompt: x}
  car: {prompt: [], steps: 0, guidance: -1, colour: red}
  person: {skip: maybe}
  7: {prompt: 'a {name}'}
  bicycle: {prompt: 'again'}
"""


def test_every_problem_is_listed_class_by_class_and_key_by_key(tmp_path):
    with pytest.raises(PromptProblems) as err:
        book_from(tmp_path, MANY)
    problems = err.value.problems
    expected = [
        "unknown top-level key(s) ['promts']",
        "vars.light must be a string or a non-empty list",
        "default.strength is 2",
        "default: placeholder {hue}",
        "classes.cat: no category of that name",
        "classes.bicycle: category 7 is already set by classes.7",
        "classes.car: unknown key(s) ['colour']",
        "classes.car.prompt must be a string or a non-empty list",
        "classes.car.guidance is -1",
        "classes.car.steps is 0",
        "classes.person.skip must be true or false",
    ]
    assert len(problems) == len(expected), problems
    for needle, problem in zip(expected, problems, strict=True):
        assert problem.startswith(needle), (needle, problem)
    message = str(err.value)
    assert "\n" not in message, "one line on the command line"
    assert message.startswith(f"{tmp_path / 'prompts.yaml'}: {len(expected)} problems: ")
    assert all(p in message for p in problems)
    assert message.endswith("run `inpaint-aug validate` to list them")


def test_one_problem_is_the_plain_message(tmp_path):
    with pytest.raises(PromptProblems) as err:
        book_from(tmp_path, "classes:\n  car: {prompt: x, strength: 0}\n")
    assert err.value.problems == (
        "classes.car.strength is 0, expected a number with 0 < strength <= 1",
    )
    assert str(err.value) == f"{tmp_path / 'prompts.yaml'}: {err.value.problems[0]}"


def test_a_bad_default_prompt_is_not_reported_again_for_each_class(tmp_path):
    text = "default: {prompt: []}\nclasses:\n  car: {strength: 0.5}\n  dog: {vars: {c: []}}\n"
    with pytest.raises(PromptProblems) as err:
        book_from(tmp_path, text)
    assert [p.split(" ")[0] for p in err.value.problems] == ["default.prompt", "classes.dog.vars.c"]

"""Vietnamese name normalisation (`schemas.names`): the harmless forms and diacritics folding."""

from __future__ import annotations

import random
import unicodedata

import pytest

from schemas.names import fold_diacritics, mask_name, normalize_name

pytestmark = pytest.mark.unit

NAME = "Nguyễn Thị Ánh"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.mark.parametrize(
    "variant",
    [
        NAME,
        nfd(NAME),
        "NGUYỄN THỊ ÁNH",
        nfd("nguyễn thị ánh"),
        "  Nguyễn   Thị\tÁnh \n",
        "Nguyễn\u00a0Thị\u3000Ánh",
        "nGuYễN tHị áNh",
    ],
    ids=["nfc", "nfd", "upper", "nfd-lower", "spaces-tab", "nbsp-ideographic", "mixed-case"],
)
def test_harmless_variants_normalise_equal(variant: str) -> None:
    assert normalize_name(variant) == "nguyễn thị ánh"


@pytest.mark.parametrize(
    "other",
    ["Nguyen Thi Anh", "Nguyễn Thị Anh", "Nguyễn Ánh", "NguyễnThịÁnh", "Ánh Thị Nguyễn"],
    ids=["no-diacritics", "one-dropped", "word-dropped", "no-spaces", "word-order"],
)
def test_real_differences_survive_normalisation(other: str) -> None:
    assert normalize_name(other) != normalize_name(NAME)


def test_normalised_form_is_nfc() -> None:
    assert unicodedata.is_normalized("NFC", normalize_name(nfd(NAME)))


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        (NAME, "nguyen thi anh"),
        ("Đặng Đức", "dang duc"),
        ("đỗ ĐÌNH", "do dinh"),
        (nfd("Đặng Đức"), "dang duc"),
        ("Phạm Ngọc Hưng", "pham ngoc hung"),
        ("Lưu Quỳnh Như", "luu quynh nhu"),
        ("  Ơn   Ưng ", "on ung"),
        ("Nguyen Thi Anh", "nguyen thi anh"),
    ],
)
def test_fold_diacritics(name: str, folded: str) -> None:
    assert fold_diacritics(name) == folded


VOWELS = {
    "a": "aàáảãạăằắẳẵặâầấẩẫậ",
    "e": "eèéẻẽẹêềếểễệ",
    "i": "iìíỉĩị",
    "o": "oòóỏõọôồốổỗộơờớởỡợ",
    "u": "uùúủũụưừứửữự",
    "y": "yỳýỷỹỵ",
    "d": "dđ",
}


@pytest.mark.parametrize("base", sorted(VOWELS))
def test_every_vietnamese_letter_folds_to_its_base(base: str) -> None:
    for letter in VOWELS[base]:
        for form in (letter, letter.upper(), nfd(letter), nfd(letter.upper())):
            assert fold_diacritics(form) == base, (letter, form)


def test_fold_is_idempotent_and_ignores_harmless_forms() -> None:
    rng = random.Random(3)
    letters = "".join(VOWELS.values()) + "bcghklmnpqrstvx"
    for _ in range(1000):
        name = " ".join(
            "".join(rng.choice(letters) for _ in range(rng.randint(1, 6))).capitalize()
            for _ in range(rng.randint(1, 4))
        )
        folded = fold_diacritics(name)
        assert folded.isascii()
        assert fold_diacritics(folded) == folded
        assert fold_diacritics(nfd(name.upper())) == folded
        assert normalize_name(nfd(f"  {name}  ")) == normalize_name(name)


@pytest.mark.parametrize(
    ("name", "masked"),
    [(NAME, "N. T. Á."), ("  Đặng   Đức ", "Đ. Đ."), ("", "?"), ("   ", "?")],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked
